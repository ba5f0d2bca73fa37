"""Property-based requests generated from our OpenAPI document: no server error, ever."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from l3dist.api.app import create_app
from l3dist.certificates import LocalCA
from l3dist.common.config import ApiConfig
from l3dist.db.session import Database, upgrade

from .conftest import network_driver

# Schemathesis collects its cases at import time, so the app (on a throwaway SQLite file) is
# built here and removed by the module fixture below.
WORKDIR = Path(tempfile.mkdtemp(prefix="l3dist-schemathesis-"))
# Also when the module is collected but its tests are not run (-k): the fixture never runs then.
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)
DB_URL = f"sqlite:///{WORKDIR / 'l3dist.db'}"
upgrade(DB_URL)
DB = Database(DB_URL)
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(ApiConfig(), DB, network_driver(DB), LocalCA(WORKDIR / "ca"))
)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    DB.engine.dispose()
    shutil.rmtree(WORKDIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
