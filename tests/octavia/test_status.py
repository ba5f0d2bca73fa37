"""The status pusher: l3dist's tree, read from the real app, handed to a fake DriverLibrary."""

from __future__ import annotations

import uuid
from typing import Any

from octavia_lib.api.drivers import data_models as dm

from l3dist_octavia.driver import L3distProviderDriver
from l3dist_octavia.status import push_status, status_dict
from tests.api.conftest import MEMBER_V4, Api

from .test_driver import address, octavia_lb


class FakeDriverLibrary:
    """Records what ``update_loadbalancer_status`` was given (the real one writes to
    Octavia's driver agent socket)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def update_loadbalancer_status(self, status: dict[str, Any]) -> None:
        self.sent.append(status)


def test_the_tree_becomes_octavias_status_dict(api: Api, driver: L3distProviderDriver) -> None:
    api.active_distributor(api.worker)
    lb = octavia_lb(flavor={"distributor": "fabric"})
    driver.loadbalancer_create(lb)
    sink = FakeDriverLibrary()
    pending = push_status(driver.client, sink, lb.loadbalancer_id)
    assert pending["loadbalancers"][0]["provisioning_status"] == "PENDING_CREATE"
    api.settle()
    listener = dm.Listener(listener_id=str(uuid.uuid4()), loadbalancer_id=lb.loadbalancer_id,
                           protocol="TCP", protocol_port=80)  # fmt: skip
    driver.listener_create(listener)
    api.settle()
    pool = dm.Pool(pool_id=str(uuid.uuid4()), listener_id=listener.listener_id, protocol="TCP",
                   lb_algorithm="ROUND_ROBIN")  # fmt: skip
    driver.pool_create(pool)
    api.settle()
    member = dm.Member(member_id=str(uuid.uuid4()), pool_id=pool.pool_id,
                       address=address(MEMBER_V4.cidr, 10), protocol_port=80)  # fmt: skip
    driver.member_create(member)
    api.settle()
    sent = push_status(driver.client, sink, lb.loadbalancer_id)
    assert sink.sent[-1] == sent
    assert [e["id"] for e in sent["loadbalancers"]] == [lb.loadbalancer_id]
    assert [e["id"] for e in sent["listeners"]] == [listener.listener_id]
    assert [e["id"] for e in sent["pools"]] == [pool.pool_id]
    assert [e["id"] for e in sent["members"]] == [member.member_id]
    assert sent["healthmonitors"] == []
    for kind in ("loadbalancers", "listeners", "pools", "members"):
        assert sent[kind][0]["provisioning_status"] == "ACTIVE", kind
        assert "operating_status" in sent[kind][0]
    driver.loadbalancer_delete(lb, cascade=True)
    api.settle()
    gone = push_status(driver.client, sink, lb.loadbalancer_id)
    assert gone == {"loadbalancers": [{"id": lb.loadbalancer_id, "provisioning_status": "DELETED"}]}


def test_status_dict_reports_a_shared_pool_once() -> None:
    pool = {
        "id": "p",
        "provisioning_status": "ACTIVE",
        "operating_status": "ONLINE",
        "members": [],
        "health_monitor": {
            "id": "h",
            "provisioning_status": "ACTIVE",
            "operating_status": "ONLINE",
            "type": "TCP",
        },
    }
    tree = {"statuses": {"loadbalancer": {
        "id": "lb", "provisioning_status": "ACTIVE", "operating_status": "ONLINE",
        "status_reason": None, "listeners": [
            {"id": "l1", "provisioning_status": "ACTIVE", "operating_status": "ONLINE",
             "pools": [pool]},
            {"id": "l2", "provisioning_status": "ACTIVE", "operating_status": "ONLINE",
             "pools": [pool]},
        ]}}}  # fmt: skip
    result = status_dict(tree)
    assert [e["id"] for e in result["pools"]] == ["p"]
    assert result["healthmonitors"] == [
        {"id": "h", "provisioning_status": "ACTIVE", "operating_status": "ONLINE"}
    ]
    assert result["loadbalancers"] == [
        {"id": "lb", "provisioning_status": "ACTIVE", "operating_status": "ONLINE"}
    ]
