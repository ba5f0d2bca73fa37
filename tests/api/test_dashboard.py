"""The dashboard's data (``GET /v2/l3dist/dashboard``) and page (``GET /dashboard``): scoped as
the API is (a tenant sees its own load balancers only, no routers), the amphorae the worker
built with their heartbeat health as the real health manager recorded it, and the jobs that
ran with their durations."""

from __future__ import annotations

import time

from l3dist.common.config import HealthConfig
from l3dist.contracts.heartbeat import Heartbeat, encode
from l3dist.health.manager import HealthManager
from l3dist_lab.controlplane import free_port
from tests.api.conftest import ADMIN, TENANT_A, TENANT_B, Api

KEY = b"0123456789abcdef0123456789abcdef"


def test_each_caller_sees_its_own_load_balancers_with_their_amphorae_and_events(
    api: Api,
) -> None:
    api.active_distributor(api.worker)
    mine = api.create_lb(TENANT_A, amphora_count=2)
    theirs = api.create_lb(TENANT_B)
    tenant = api.get("/v2/l3dist/dashboard", headers=TENANT_A).json()
    assert [lb["id"] for lb in tenant["loadbalancers"]] == [mine["id"]]
    assert (tenant["admin"], tenant["routers"]) == (False, [])
    (shown,) = tenant["loadbalancers"]
    assert shown["vip_address"] == mine["vip_address"]
    assert len(shown["amphorae"]) == 2
    assert {a["health"] for a in shown["amphorae"]} == {"silent"}  # no heartbeat heard yet
    (create,) = [e for e in tenant["events"] if e["target_id"] == mine["id"]]
    assert create["state"] == "DONE" and create["duration_ms"] >= 0
    assert all(e["target_id"] != theirs["id"] for e in tenant["events"])
    admin = api.get("/v2/l3dist/dashboard", headers=ADMIN).json()
    assert {lb["id"] for lb in admin["loadbalancers"]} == {mine["id"], theirs["id"]}

    # A heartbeat through the real health manager: that amphora is healthy now.
    first = shown["amphorae"][0]["id"]
    manager = HealthManager(HealthConfig(bind_host="127.0.0.1", bind_port=free_port()), api.db, KEY)
    try:
        rescue = {"flows": 3, "rescued": 120, "copies": 7}
        beat = Heartbeat.model_validate(
            {"amphora_id": first, "seq": 1, "sent_at": time.time(), "flow_rescue": rescue}
        )
        manager.handle(encode(beat, KEY))
    finally:
        manager.close()
    (shown,) = api.get("/v2/l3dist/dashboard", headers=TENANT_A).json()["loadbalancers"]
    amphorae = {a["id"]: a for a in shown["amphorae"]}
    assert amphorae[first]["health"] == "healthy"
    # Flow rescue's totals as the heartbeat carried them; none for the amphora not heard.
    assert amphorae[first]["flow_rescue"] == rescue
    assert [a["flow_rescue"] for i, a in amphorae.items() if i != first] == [{}]


def test_the_page_is_served_and_reads_the_dashboard_data(api: Api) -> None:
    page = api.client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'fetch("/v2/l3dist/dashboard"' in page.text
    assert api.get("/v2/l3dist/dashboard", headers={"X-Project-Id": "p", "X-Roles": ""}
                   ).status_code == 403  # fmt: skip
