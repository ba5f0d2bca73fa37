"""Octavia's fully populated load balancer create: the whole tree in one request, made in one
transaction and built by the create flow alone (the real worker, noop compute and agents)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from l3dist.db import models
from tests.api.conftest import ANYCAST_V4, MEMBER_V4, TENANT_A, Api


def _member(address: str, port: int = 80, **fields: Any) -> dict[str, Any]:
    return {"address": address, "protocol_port": port, "subnet_id": MEMBER_V4.id, **fields}


def _tree(**lb: Any) -> dict[str, Any]:
    """Two listeners (HTTP with a pool, two members and a monitor; TCP with a pool) and one
    pool of the load balancer that no listener uses yet."""
    return {
        "loadbalancer": {
            "vip_subnet_id": ANYCAST_V4.id,
            "amphora_count": 3,
            "listeners": [
                {
                    "protocol": "HTTP",
                    "protocol_port": 80,
                    "name": "web",
                    "default_pool": {
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [_member("198.18.3.10"), _member("198.18.3.11", weight=3)],
                        "healthmonitor": {
                            "type": "HTTP",
                            "delay": 2,
                            "timeout": 1,
                            "max_retries": 2,
                            "url_path": "/health",
                        },
                    },
                },
                {
                    "protocol": "TCP",
                    "protocol_port": 443,
                    "default_pool": {"protocol": "TCP", "lb_algorithm": "SOURCE_IP"},
                },
            ],
            "pools": [
                {
                    "protocol": "TCP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "name": "spare",
                    "members": [_member("198.18.3.12", 8080)],
                }
            ],
            **lb,
        }
    }


def _jobs(api: Api, lb_id: str) -> list[tuple[str, str]]:
    with api.db.session() as session:
        rows = session.execute(
            select(models.WorkerJob.flow, models.WorkerJob.state).where(
                models.WorkerJob.target_id == lb_id
            )
        )
        return [(flow, state) for flow, state in rows]


def test_a_fully_populated_create_is_one_job_and_ends_all_active_and_announced(
    api: Api,
) -> None:
    api.active_distributor(api.worker)
    created = api.post("/v2/lbaas/loadbalancers", _tree(), TENANT_A)
    assert created.status_code == 201, created.text
    lb = created.json()["loadbalancer"]
    # Octavia's answer: the tree in full, every object PENDING_CREATE.
    web, tls = lb["listeners"]
    assert (web["protocol_port"], tls["protocol_port"]) == (80, 443)
    pools = {p["id"]: p for p in lb["pools"]}
    assert set(pools) == {web["default_pool_id"], tls["default_pool_id"],
                          next(p["id"] for p in lb["pools"] if p["name"] == "spare")}  # fmt: skip
    web_pool = pools[web["default_pool_id"]]
    assert sorted(m["address"] for m in web_pool["members"]) == ["198.18.3.10", "198.18.3.11"]
    assert web_pool["healthmonitor"]["url_path"] == "/health"
    statuses = [lb, web, tls, *lb["pools"], *web_pool["members"], web_pool["healthmonitor"]]
    assert {o["provisioning_status"] for o in statuses} == {"PENDING_CREATE"}

    api.settle()
    assert _jobs(api, lb["id"]) == [("create_load_balancer", "DONE")], "one flow built it all"
    tree = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}/status").json()["statuses"]
    shown = tree["loadbalancer"]
    assert (shown["provisioning_status"], shown["operating_status"]) == ("ACTIVE", "ONLINE")
    for listener in shown["listeners"]:
        assert listener["provisioning_status"] == "ACTIVE"
        for pool in listener["pools"]:
            assert pool["provisioning_status"] == "ACTIVE"
            for member in pool["members"]:
                assert member["provisioning_status"] == "ACTIVE"
    members = api.get(f"/v2/lbaas/pools/{web['default_pool_id']}/members").json()["members"]
    assert {m["weight"] for m in members} == {1, 3}
    # The create flow registered every amphora (the VIP announced): rows the worker wrote.
    with api.db.session() as session:
        amphorae = set(session.scalars(select(models.Amphora.id).where(
            models.Amphora.load_balancer_id == lb["id"])))  # fmt: skip
        registered = set(session.scalars(select(models.AmphoraRegistration.amphora_id).where(
            models.AmphoraRegistration.load_balancer_id == lb["id"])))  # fmt: skip
    assert len(amphorae) == 3 and registered == amphorae


def test_a_plain_create_still_waits_for_a_listener_to_announce(api: Api) -> None:
    api.active_distributor(api.worker)
    lb = api.create_lb(amphora_count=2)
    with api.db.session() as session:
        registered = session.scalar(select(func.count()).select_from(models.AmphoraRegistration))
    assert registered == 0
    assert (
        api.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]["operating_status"]
        == "OFFLINE"
    )


def _listener0(**fields: Any) -> dict[str, Any]:
    body = _tree()
    body["loadbalancer"]["listeners"][0].update(fields)
    return body


def _web_pool(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body["loadbalancer"]["listeners"][0]["default_pool"])


def _with_web_pool(**fields: Any) -> dict[str, Any]:
    body = _tree()
    body["loadbalancer"]["listeners"][0]["default_pool"].update(fields)
    return body


def _bad_member() -> dict[str, Any]:
    return _with_web_pool(members=[_member("198.18.3.10"), _member("not-an-address")])


def _outside_member() -> dict[str, Any]:
    return _with_web_pool(members=[_member("198.18.3.10"), _member("192.0.2.1")])


def _twice_member() -> dict[str, Any]:
    return _with_web_pool(members=[_member("198.18.3.10"), _member("198.18.3.10")])


def _slow_monitor() -> dict[str, Any]:
    return _with_web_pool(healthmonitor={"type": "TCP", "delay": 1, "timeout": 5,
                                         "max_retries": 2})  # fmt: skip


def _same_port() -> dict[str, Any]:
    body = _tree()
    body["loadbalancer"]["listeners"][1]["protocol_port"] = 80
    return body


def _same_id() -> dict[str, Any]:
    body = _tree()
    chosen = str(uuid.uuid4())
    body["loadbalancer"]["listeners"][0]["id"] = chosen
    body["loadbalancer"]["pools"][0]["id"] = chosen
    return body


def _wrong_protocol() -> dict[str, Any]:
    body = _tree()
    body["loadbalancer"]["listeners"][0]["default_pool"]["protocol"] = "TCP"
    return body


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (_bad_member, "listeners.0.default_pool.members.1.address", "address"),
        (_outside_member, "listeners.0.default_pool.members.1.address", "not in subnet_id"),
        (_twice_member, "listeners.0.default_pool.members.1.address", "is also"),
        (_slow_monitor, "listeners.0.default_pool.healthmonitor.timeout", "greater than delay"),
        (_same_port, "listeners.1.protocol_port", "is also listeners.0"),
        (_same_id, "pools.0.id", "is also listeners.0"),
        (_wrong_protocol, "listeners.0.default_pool.protocol", "cannot use a TCP pool"),
        (lambda: _listener0(default_pool_id=str(uuid.uuid4())), "listeners.0.default_pool_id",
         "no pools yet"),
        (lambda: _listener0(insert_headers={"X-Forwarded-For": "true"}, protocol="TCP"),
         "listeners.0.insert_headers", "only valid for HTTP"),
    ],
)  # fmt: skip
def test_a_bad_child_is_refused_by_its_place_and_changes_nothing(
    api: Api, body: Any, field: str, words: str
) -> None:
    api.active_distributor(api.worker)
    before = api.snapshot()
    ports = api.get("/v2/ports").json()["ports"]
    refused = api.post("/v2/lbaas/loadbalancers", body(), TENANT_A)
    assert refused.status_code == 400, refused.text
    fault = refused.json()
    assert fault["field"] == field and words in fault["faultstring"], fault
    assert api.snapshot() == before
    assert api.get("/v2/ports").json()["ports"] == ports, "the VIP's address went back"


def test_an_id_already_taken_is_a_conflict_naming_its_place(api: Api) -> None:
    api.active_distributor(api.worker)
    first = api.post("/v2/lbaas/loadbalancers", _tree(), TENANT_A).json()["loadbalancer"]
    api.settle()
    body = _tree()
    body["loadbalancer"]["listeners"][1]["id"] = first["listeners"][0]["id"]
    before = api.snapshot()
    refused = api.post("/v2/lbaas/loadbalancers", body, {"X-Project-Id": "admin-project",
                                                          "X-Roles": "admin"})  # fmt: skip
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "listeners.1.id", refused.json()
    assert api.snapshot() == before
