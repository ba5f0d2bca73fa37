"""API fixtures: the real app on a fresh database (SQLite and PostgreSQL), driven over HTTP."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from l3dist.api.app import create_app
from l3dist.common import constants as c
from l3dist.common.config import ApiConfig
from l3dist.db import models
from l3dist.db.session import Database, upgrade
from l3dist.network.catalog import LabCatalog

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CATALOG = LabCatalog()
ANYCAST_V4 = CATALOG.subnet_by_name("anycast-net-v4")
ANYCAST_V6 = CATALOG.subnet_by_name("anycast-net-v6")
FRONTEND_V4 = CATALOG.subnet_by_name("frontend-net-v4")
MEMBER_V4 = CATALOG.subnet_by_name("member-net-v4")

ADMIN = {"X-Project-Id": "admin-project", "X-Roles": "admin"}
TENANT_A = {"X-Project-Id": "project-a", "X-Roles": "member"}
TENANT_B = {"X-Project-Id": "project-b", "X-Roles": "member"}
READER_A = {"X-Project-Id": "project-a", "X-Roles": "reader"}


class Api:
    """An HTTP client of the API with helpers for the worker's part (settling PENDING_*)."""

    def __init__(self, client: TestClient, db: Database) -> None:
        self.client = client
        self.db = db

    def get(self, path: str, headers: dict[str, str] = ADMIN, **kw: Any) -> Any:
        return self.client.get(path, headers=headers, **kw)

    def post(self, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
        return self.client.post(path, json=body, headers=headers)

    def put(self, path: str, body: Any, headers: dict[str, str] = ADMIN) -> Any:
        return self.client.put(path, json=body, headers=headers)

    def delete(self, path: str, headers: dict[str, str] = ADMIN, **kw: Any) -> Any:
        return self.client.delete(path, headers=headers, **kw)

    def settle(self) -> None:
        """Do what the controller worker will do: PENDING_CREATE/UPDATE -> ACTIVE."""
        with self.db.session() as s:
            for model in (
                models.LoadBalancer,
                models.Listener,
                models.Pool,
                models.Member,
                models.HealthMonitor,
            ):
                s.execute(
                    update(model)
                    .where(model.provisioning_status.in_((c.PENDING_CREATE, c.PENDING_UPDATE)))
                    .values(provisioning_status=c.ACTIVE)
                )
            s.execute(update(models.Distributor).values(status=c.ACTIVE))

    def create_lb(self, headers: dict[str, str] = TENANT_A, **fields: Any) -> dict[str, Any]:
        body = {"vip_subnet_id": ANYCAST_V4.id, **fields}
        response = self.post("/v2/lbaas/loadbalancers", {"loadbalancer": body}, headers)
        assert response.status_code == 201, response.text
        self.settle()
        return dict(response.json()["loadbalancer"])

    def create(
        self, path: str, kind: str, headers: dict[str, str] = TENANT_A, **fields: Any
    ) -> dict[str, Any]:
        response = self.post(path, {kind: fields}, headers)
        assert response.status_code == 201, response.text
        self.settle()
        return dict(response.json()[kind])

    def snapshot(self) -> dict[str, Any]:
        """Every object the API knows, as an admin sees it (to prove a refusal changed nothing)."""
        paths = {
            "loadbalancers": "/v2/lbaas/loadbalancers",
            "listeners": "/v2/lbaas/listeners",
            "pools": "/v2/lbaas/pools",
            "healthmonitors": "/v2/lbaas/healthmonitors",
            "distributors": "/v2/lbaas/distributors",
            "bgp_speakers": "/v2/lbaas/bgpspeakers",
            "bgp_peers": "/v2/lbaas/bgppeers",
            "amphorae": "/v2/octavia/amphorae",
        }
        result = {key: self.get(path).json()[key] for key, path in paths.items()}
        result["members"] = {
            pool["id"]: self.get(f"/v2/lbaas/pools/{pool['id']}/members").json()["members"]
            for pool in result["pools"]
        }
        return result


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    upgrade(db_url)
    db = Database(db_url)
    app = create_app(ApiConfig(pagination_max_limit=1000), db, CATALOG)
    with TestClient(app) as client:
        yield Api(client, db)
    db.engine.dispose()
