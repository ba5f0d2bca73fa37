"""A database the API cannot reach (stopped, restarting, failing over): every call answers 503
with a message that says so and a Retry-After, never a 500, and accepts nothing."""

from __future__ import annotations

import warnings

from l3dist.api.app import create_app
from l3dist.common.config import ApiConfig
from l3dist.db.session import Database
from l3dist.network.static import StaticNetworkDriver
from l3dist_lab.controlplane import free_port
from tests.api.conftest import ADMIN, TENANT_A

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_calls_answer_503_while_the_database_is_away() -> None:
    # A PostgreSQL URL on a port where nothing listens (loopback): the connection is refused.
    db = Database(f"postgresql://l3dist:l3dist@127.0.0.1:{free_port()}/l3dist")
    app = create_app(ApiConfig(), db, StaticNetworkDriver(db))
    with TestClient(app) as client:
        for method, path, body in (
            ("GET", "/v2/lbaas/loadbalancers", None),
            ("GET", "/v2/lbaas/loadbalancers/00000000-0000-4000-8000-000000000000", None),
            ("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
                "name": "x", "vip_subnet_id": "00000000-0000-4000-8000-000000000001"}}),
        ):  # fmt: skip
            answer = client.request(method, path, json=body, headers=ADMIN)
            assert answer.status_code == 503, (path, answer.text)
            assert "database is unavailable" in answer.json()["faultstring"]
            assert answer.headers["retry-after"] == "1"
        assert client.get("/v2/l3dist/dashboard", headers=TENANT_A).status_code == 503
    db.engine.dispose()
