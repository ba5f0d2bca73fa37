"""GET /v2/lbaas/statuses: every load balancer's statuses, flat, scoped as lists are."""

from __future__ import annotations

from tests.api.conftest import ADMIN, TENANT_A, TENANT_B, Api


def test_statuses_are_flat_scoped_and_filtered(api: Api) -> None:
    api.active_distributor(api.worker)
    mine = api.create_lb(TENANT_A)
    theirs = api.create_lb(TENANT_B)
    listener = api.create("/v2/lbaas/listeners", "listener", TENANT_A,
                          loadbalancer_id=mine["id"], protocol="TCP", protocol_port=80)  # fmt: skip
    pool = api.create("/v2/lbaas/pools", "pool", TENANT_A, loadbalancer_id=mine["id"],
                      protocol="TCP", lb_algorithm="ROUND_ROBIN")  # fmt: skip

    seen = api.get("/v2/lbaas/statuses", headers=TENANT_A).json()["statuses"]
    assert [entry["loadbalancer"]["id"] for entry in seen] == [mine["id"]]
    [entry] = seen
    assert entry["loadbalancer"]["provisioning_status"] == "ACTIVE"
    assert entry["loadbalancer"]["status_reason"] is None
    assert [(e["id"], e["provisioning_status"]) for e in entry["listeners"]] == [
        (listener["id"], "ACTIVE")
    ]
    # A pool no listener uses is still the load balancer's (Octavia's status tree omits it).
    assert [e["id"] for e in entry["pools"]] == [pool["id"]]
    assert entry["members"] == [] and entry["healthmonitors"] == []

    everything = api.get("/v2/lbaas/statuses", headers=ADMIN).json()["statuses"]
    assert {e["loadbalancer"]["id"] for e in everything} == {mine["id"], theirs["id"]}
    none = api.get("/v2/lbaas/statuses?provider=l3dist", headers=ADMIN).json()["statuses"]
    assert none == []


def test_a_bad_provider_filter_names_the_field(api: Api) -> None:
    answer = api.get("/v2/lbaas/statuses?provider=" + "x" * 65, headers=ADMIN)
    assert answer.status_code == 400, answer.text
    assert "provider" in answer.text
