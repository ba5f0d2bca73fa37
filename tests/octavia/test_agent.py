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
from tests.api.test_statistics import heartbeat, manager

from .test_driver import address, octavia_lb


class RecordingDriverLibrary:
    """Records update_loadbalancer_status; get_loadbalancer answers what a test says Octavia
    holds (None: Octavia's get socket is not there)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.octavia_has: dict[str, dict[str, Any]] = {}
        self.statistics: list[dict[str, Any]] = []

    def update_loadbalancer_status(self, status: dict[str, Any]) -> None:
        self.sent.append(status)

    def update_listener_statistics(self, statistics: dict[str, Any]) -> None:
        self.statistics.append(statistics)

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


def _sync_and_lb(
    api: Api, driver: L3distProviderDriver
) -> tuple[RecordingDriverLibrary, StatusSync, dm.LoadBalancer]:
    """An ACTIVE distributor, a status sync to a recording Octavia side, and a load balancer
    created through the driver (its job not run yet)."""
    api.active_distributor(api.worker)
    octavia = RecordingDriverLibrary()
    sync = StatusSync(driver.client, octavia)
    lb = octavia_lb(flavor={"distributor": "fabric"})
    driver.loadbalancer_create(lb)
    return octavia, sync, lb


def test_changes_are_pushed_once_and_deletions_as_deleted(
    api: Api, driver: L3distProviderDriver
) -> None:
    octavia, sync, lb = _sync_and_lb(api, driver)
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

    # Deleted while the agent was down: the next agent's first pass finds it among l3dist's
    # deleted load balancers and, since Octavia still holds it, pushes it DELETED.
    again = StatusSync(driver.client, octavia)
    assert _one_push(again, octavia) == {
        "loadbalancers": [{"id": lb.loadbalancer_id, "provisioning_status": "DELETED"}]
    }
    del octavia.octavia_has[lb.loadbalancer_id]  # Octavia deleted it: no push again
    assert StatusSync(driver.client, octavia).sync_once() == 0


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


def test_listener_statistics_are_pushed_when_they_change(
    api: Api, driver: L3distProviderDriver
) -> None:
    octavia, sync, lb = _sync_and_lb(api, driver)
    api.settle()
    listener = dm.Listener(listener_id=str(uuid.uuid4()), loadbalancer_id=lb.loadbalancer_id,
                           protocol="TCP", protocol_port=80)  # fmt: skip
    driver.listener_create(listener)
    api.settle()
    sync.sync_once()
    zeros = {"id": listener.listener_id, "active_connections": 0, "bytes_in": 0, "bytes_out": 0,
             "request_errors": 0, "total_connections": 0}  # fmt: skip
    assert octavia.statistics == [{"listeners": [zeros]}]
    sync.sync_once()
    assert len(octavia.statistics) == 1, "unchanged figures are not pushed again"

    # The health manager records a heartbeat's counters; the next pass pushes them.
    amphora = api.get(f"/v2/octavia/amphorae?loadbalancer_id={lb.loadbalancer_id}").json()
    counters = {"active_connections": 2, "total_connections": 7, "bytes_in": 700,
                "bytes_out": 9000, "request_errors": 1}  # fmt: skip
    hm = manager(api)
    try:
        hm.handle(heartbeat(amphora["amphorae"][0]["id"], 1, 42,
                            **{listener.listener_id: counters}))  # fmt: skip
    finally:
        hm.close()
    sync.sync_once()
    assert octavia.statistics[-1] == {"listeners": [{"id": listener.listener_id, **counters}]}


class CannedStatuses:
    """l3dist's statuses answer, one canned answer per pass (pure logic: the race below is
    a matter of ordering, which the real worker does not let a test choose)."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        assert (method, path) == ("GET", "/v2/lbaas/statuses")
        return self.answers.pop(0)


def test_the_error_reason_is_logged_once_even_when_it_comes_a_pass_late(
    caplog: Any,
) -> None:
    """The worker marks a load balancer ERROR before it records the failed job: one pass sees
    ERROR without a reason, the next the reason and nothing else new. The reason is logged
    once, on the pass that has it."""
    lb_id = str(uuid.uuid4())

    def answer(reason: str | None) -> dict[str, Any]:
        lb = {"id": lb_id, "provisioning_status": "ERROR", "operating_status": "OFFLINE",
              "status_reason": reason, "listeners": []}  # fmt: skip
        return {"statuses": [{"loadbalancer": lb}], "deleted": []}

    client = CannedStatuses([answer(None), answer("no free amphora host"),
                             answer("no free amphora host")])  # fmt: skip
    octavia = RecordingDriverLibrary()
    sync = StatusSync(client, octavia)  # type: ignore[arg-type]
    caplog.set_level("ERROR", logger="l3dist_octavia.agent")
    assert sync.sync_once() == 1
    assert "is in ERROR" not in caplog.text
    assert sync.sync_once() == 0, "the status is unchanged: nothing pushed"
    assert caplog.text.count(f"load balancer {lb_id} is in ERROR: no free amphora host") == 1
    sync.sync_once()
    assert caplog.text.count("is in ERROR") == 1, "the same reason is not logged again"
