"""Lab fixtures: a fresh fabric per test module, amphorae per driver."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from l3dist.bgp.base import host_prefix
from l3dist.lab import amphora, fabric, vips
from l3dist.lab.amphora import LabAmphora
from l3dist.lab.config import LabConfig
from l3dist.lab.fib import FibWatcher

VIP4 = LabConfig().vip(4)
VIP6 = LabConfig().vip(6)


@pytest.fixture(scope="session", autouse=True)
def lab_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The controller database the lab records its networks in (and the CLI processes the tests
    start inherit): a fresh SQLite file for the run, never the machine's own."""
    url = f"sqlite:///{tmp_path_factory.mktemp('lab-db') / 'l3dist.db'}"
    previous = os.environ.get("L3DIST_DATABASE_URL")
    os.environ["L3DIST_DATABASE_URL"] = url
    try:
        yield url
    finally:
        if previous is None:
            del os.environ["L3DIST_DATABASE_URL"]
        else:
            os.environ["L3DIST_DATABASE_URL"] = previous


@pytest.fixture(scope="module")
def lab_config() -> LabConfig:
    return LabConfig()


@pytest.fixture(scope="module")
def lab(lab_prerequisites: None, lab_config: LabConfig) -> Iterator[LabConfig]:
    fabric.down()
    fabric.up(lab_config)
    try:
        yield lab_config
    finally:
        fabric.down()


@pytest.fixture(scope="module")
def fib(lab: LabConfig) -> Iterator[FibWatcher]:
    with FibWatcher() as watcher:
        yield watcher


create_amphorae = amphora.create_many


def announce_all(amps: list[LabAmphora], fib: FibWatcher) -> None:
    for vip in (VIP4, VIP6):
        for amp in amps:
            vips.announce(amp, vip)
    for vip, version in ((VIP4, 4), (VIP6, 6)):
        wanted = {a.frontend_ip(version) for a in amps}
        fib.wait_until(host_prefix(vip), lambda hops, w=wanted: w <= hops, timeout=30)
