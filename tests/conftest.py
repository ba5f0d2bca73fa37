"""Shared fixtures. Lab tests run against real FRR, BIRD, ExaBGP and HAProxy in namespaces."""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/lab/" in str(item.fspath):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab_prerequisites() -> None:
    """Lab tests need root and the daemons; fail loudly rather than skip (CI must run them)."""
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (network namespaces); run ./run test as root")
    for tool in ("vtysh", "bird", "birdc", "haproxy", "nft", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing; ./run test installs it")
