"""The provider agent's status sync: l3dist's statuses, read from the real app and worker,
handed to a recording stand-in for octavia-lib's DriverLibrary (Octavia's driver agent is
not part of these tests; what it does with the updates is Octavia's)."""

from __future__ import annotations

import uuid
from typing import Any

from octavia_lib.api.drivers import data_models as dm

from l3dist_octavia.agent import StatusSync, octavia_children, snapshot, status_update
from l3dist_octavia.driver import L3distProviderDriver
from tests.api.conftest import MEMBER_V4, Api

from .test_driver import address, octavia_lb


class RecordingDriverLibrary:
    """Records update_loadbalancer_status; get_loadbalancer answers what a test says Octavia
    holds (None: Octavia's get socket is not there)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.octavia_has: dict[str, dict[str, Any]] = {}

    def update_loadbalancer_status(self, status: dict[str, Any]) -> None:
        self.sent.append(status)

    def get_loadbalancer(self, loadbalancer_id: str) -> Any:
        return self.octavia_has.get(loadbalancer_id)


def _one_push(sync: StatusSync, octavia: RecordingDriverLibrary) -> dict[str, Any]:
    """One pass that pushes exactly one update; that update."""
    before = len(octavia.sent)
    assert sync.sync_once() == 1
    [sent] = octavia.sent[before:]
    return sent


def _statuses(sent: dict[str, Any], kind: str) -> dict[str, str]:
    return {entry["id"]: entry["provisioning_status"] for entry in sent.get(kind, [])}


def test_changes_are_pushed_once_and_deletions_as_deleted(
    api: Api, driver: L3distProviderDriver
) -> None:
    api.active_distributor(api.worker)
    octavia = RecordingDriverLibrary()
    sync = StatusSync(driver.client, octavia)
    lb = octavia_lb(flavor={"distributor": "fabric"})
    driver.loadbalancer_create(lb)
    assert sync.sync_once() == 1
    assert _statuses(octavia.sent[-1], "loadbalancers") == {lb.loadbalancer_id: "PENDING_CREATE"}
    assert sync.sync_once() == 0, "nothing changed: nothing pushed"
    api.settle()
    listener = dm.Listener(listener_id=str(uuid.uuid4()), loadbalancer_id=lb.loadbalancer_id,
                           protocol="TCP", protocol_port=80)  # fmt: skip
    driver.listener_create(listener)
    api.settle()
    # A pool of the load balancer that no listener uses yet: reported too.
    pool = dm.Pool(pool_id=str(uuid.uuid4()), loadbalancer_id=lb.loadbalancer_id,
                   protocol="TCP", lb_algorithm="ROUND_ROBIN")  # fmt: skip
    driver.pool_create(pool)
    api.settle()
    member = dm.Member(member_id=str(uuid.uuid4()), pool_id=pool.pool_id,
                       address=address(MEMBER_V4.cidr, 10), protocol_port=80)  # fmt: skip
    driver.member_create(member)
    api.settle()
    sent = _one_push(sync, octavia)
    assert _statuses(sent, "loadbalancers") == {lb.loadbalancer_id: "ACTIVE"}
    assert _statuses(sent, "listeners") == {listener.listener_id: "ACTIVE"}
    assert _statuses(sent, "pools") == {pool.pool_id: "ACTIVE"}
    assert _statuses(sent, "members") == {member.member_id: "ACTIVE"}
    assert all("operating_status" in entry for entry in sent["members"])

    driver.member_delete(member)
    api.settle()
    sent = _one_push(sync, octavia)
    assert _statuses(sent, "members") == {member.member_id: "DELETED"}
    assert _statuses(sent, "loadbalancers") == {lb.loadbalancer_id: "ACTIVE"}
    assert member.member_id not in str(sync.pushed)

    # The agent restarts (nothing remembered) while a listener is deleted: Octavia still has
    # it, so it is reported DELETED from Octavia's view.
    octavia.octavia_has[lb.loadbalancer_id] = {
        "loadbalancer_id": lb.loadbalancer_id,
        "listeners": [{"listener_id": listener.listener_id}],
        "pools": [{"pool_id": pool.pool_id, "members": [], "healthmonitor": None}],
    }
    driver.listener_delete(listener)
    api.settle()
    restarted = StatusSync(driver.client, octavia)
    sent = _one_push(restarted, octavia)
    assert _statuses(sent, "listeners") == {listener.listener_id: "DELETED"}
    assert _statuses(sent, "pools") == {pool.pool_id: "ACTIVE"}
    assert _statuses(sent, "loadbalancers") == {lb.loadbalancer_id: "ACTIVE"}

    driver.loadbalancer_delete(lb, cascade=True)
    api.settle()
    assert _one_push(restarted, octavia) == {
        "loadbalancers": [{"id": lb.loadbalancer_id, "provisioning_status": "DELETED"}]
    }
    assert restarted.pushed == {}


def test_other_providers_load_balancers_are_not_pushed(
    api: Api, driver: L3distProviderDriver
) -> None:
    """l3dist's own load balancers (provider amphora) are none of Octavia's business."""
    api.active_distributor(api.worker)
    api.create_lb()  # l3dist's own API: provider "amphora"
    octavia = RecordingDriverLibrary()
    assert StatusSync(driver.client, octavia).sync_once() == 0
    assert octavia.sent == []
    everything = driver.client.request("GET", "/v2/lbaas/statuses")["statuses"]
    assert len(everything) == 1 and everything[0]["loadbalancer"]["status_reason"] is None


def test_status_update_is_the_whole_load_balancer_once_anything_changed() -> None:
    """Pure logic: nothing when nothing changed; else every object, and DELETED for what is
    gone (before, or in Octavia)."""

    def obj(object_id: str, operating: str = "ONLINE", at: str = "t1") -> dict[str, str]:
        return {"id": object_id, "provisioning_status": "ACTIVE", "operating_status": operating,
                "updated_at": at}  # fmt: skip

    entry = {"loadbalancer": obj("lb"), "listeners": [obj("l1")], "pools": [],
             "members": [obj("m1", "ERROR")], "healthmonitors": []}  # fmt: skip
    now = snapshot(entry)
    assert status_update(now, snapshot(entry)) == {}
    # Statuses as they were, but the member was changed (and back) meanwhile: pushed whole.
    touched = snapshot({**entry, "members": [obj("m1", "ERROR", "t0"), obj("m2")]})
    update = status_update(now, touched, {"pools": {"p9"}})
    assert update == {
        "loadbalancers": [{"id": "lb", "provisioning_status": "ACTIVE",
                           "operating_status": "ONLINE"}],
        "listeners": [{"id": "l1", "provisioning_status": "ACTIVE",
                       "operating_status": "ONLINE"}],
        "members": [
            {"id": "m1", "provisioning_status": "ACTIVE", "operating_status": "ERROR"},
            {"id": "m2", "provisioning_status": "DELETED"},
        ],
        "pools": [{"id": "p9", "provisioning_status": "DELETED"}],
    }  # fmt: skip
    first = status_update(now, None)
    assert set(first) == {"loadbalancers", "listeners", "members"}


def test_octavias_children_from_its_provider_dict() -> None:
    octavia_lb = {
        "listeners": [{"listener_id": "l1"}],
        "pools": [
            {
                "pool_id": "p1",
                "members": [{"member_id": "m1"}, {"member_id": "m2"}],
                "healthmonitor": {"healthmonitor_id": "h1"},
            }
        ],
    }
    assert octavia_children(octavia_lb) == {
        "listeners": {"l1"},
        "pools": {"p1"},
        "members": {"m1", "m2"},
        "healthmonitors": {"h1"},
    }
    assert octavia_children(None) == {k: set() for k in ("listeners", "pools", "members",
                                                         "healthmonitors")}  # fmt: skip
