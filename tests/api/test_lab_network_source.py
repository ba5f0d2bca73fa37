"""The API on the lab network driver (its networks and subnets from the database), as
``l3dist api`` runs by default: subnet lookups, the Neutron-shaped view, VIP validation."""

from __future__ import annotations

import warnings

from l3dist.api.app import create_app
from l3dist.common.config import ApiConfig
from l3dist.db.session import Database, upgrade
from l3dist.network.catalog import stable_id
from l3dist_lab.drivers.network import LabNetworkDriver, register_lab_networks

from .conftest import ADMIN, TENANT_A

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_api_on_the_lab_network_driver(db_url: str) -> None:
    upgrade(db_url)
    db = Database(db_url)
    driver = LabNetworkDriver(db)
    register_lab_networks(driver)
    register_lab_networks(driver)  # idempotent
    with TestClient(create_app(ApiConfig(), db, driver)) as client:
        subnets = client.get(
            "/v2.0/subnets", params={"name": "anycast-net-v4"}, headers=ADMIN
        ).json()["subnets"]
        assert [s["id"] for s in subnets] == [stable_id("anycast-net-v4")]
        assert subnets[0]["cidr"] == "198.18.100.0/24"
        networks = client.get("/v2/networks", headers=ADMIN).json()["networks"]
        assert {n["name"] for n in networks} == {
            "lb-mgmt-net",
            "frontend-net",
            "anycast-net",
            "member-net",
        }
        created = client.post(
            "/v2/lbaas/loadbalancers",
            headers=TENANT_A,
            json={
                "loadbalancer": {
                    "vip_subnet_id": stable_id("anycast-net-v4"),
                    "frontend_subnet_id": stable_id("frontend-net-v4"),
                }
            },
        )
        assert created.status_code == 201, created.text
        outside = client.post(
            "/v2/lbaas/loadbalancers",
            headers=TENANT_A,
            json={
                "loadbalancer": {
                    "vip_subnet_id": stable_id("anycast-net-v4"),
                    "vip_address": "198.18.1.50",
                }
            },
        )
        assert outside.status_code == 400 and outside.json()["field"] == "vip_address"
    db.engine.dispose()
