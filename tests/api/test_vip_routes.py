"""VIP routes (the spec's Register VIP / Unregister VIP / List VIP) through the API and the real
worker: ``/v2/lbaas/distributors/{id}/vips``. Every refusal is a 4xx naming the field that
changes nothing: no route, no job, no address reserved in the network driver's IPAM.

The worker here has no amphora to call (no load balancer was built), so a route becomes ACTIVE
and OFFLINE (announced by no one yet); what the agents are asked is the flows' and the lab's.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from l3dist.controller.worker import Worker
from l3dist.db import models

from .conftest import (
    ADMIN,
    ANYCAST_V4,
    READER_A,
    TENANT_A,
    TENANT_B,
    Api,
    run_jobs,
    world_fixtures,
)

VIP4, NEXTHOP4 = "198.18.100.200", "198.18.1.200"
VIP6, NEXTHOP6 = "fd00:198:18:100::200", "fd00:198:18:1::200"


def _speaker(api: Api, name: str, version: int, peer_ip: str) -> tuple[str, str]:
    speaker = api.create("/v2/lbaas/bgpspeakers", "bgp_speaker", ADMIN, name=name,
                         ip_version=version, local_as=65001)  # fmt: skip
    peer = api.create("/v2/lbaas/bgppeers", "bgp_peer", ADMIN, name=f"{name}-tor",
                      peer_ip=peer_ip, remote_as=65000)  # fmt: skip
    added = api.put(f"/v2/lbaas/bgpspeakers/{speaker['id']}/add_bgp_peer",
                    {"bgp_peer_id": peer["id"]})  # fmt: skip
    assert added.status_code == 200, added.text
    return speaker["id"], peer["id"]


@pytest.fixture
def fabric(api: Api, worker: Worker) -> dict[str, str]:
    return build_fabric(api, worker)


def build_fabric(api: Api, worker: Worker) -> dict[str, str]:
    """A dual-stack distributor made ACTIVE by the worker, with its peers' ids."""
    v4, peer4 = _speaker(api, "fabric-v4", 4, "198.18.0.1")
    v6, peer6 = _speaker(api, "fabric-v6", 6, "fd00:198:18::1")
    made = api.create("/v2/lbaas/distributors", "distributor", ADMIN, name="fabric",
                      distributor_type="L3_BGP",
                      config_data={"bgp_speaker_ids": [v4, v6]})  # fmt: skip
    run_jobs(worker)
    shown = api.get(f"/v2/lbaas/distributors/{made['id']}").json()["distributor"]
    assert shown["status"] == "ACTIVE", shown
    return {"id": made["id"], "peer4": peer4, "peer6": peer6}


def _path(distributor_id: str) -> str:
    return f"/v2/lbaas/distributors/{distributor_id}/vips"


def _post(api: Api, distributor_id: str, headers: dict[str, str] = TENANT_A, **fields: Any) -> Any:
    return api.post(_path(distributor_id), {"vip": fields}, headers)


def _state(api: Api) -> tuple[Any, ...]:
    """Routes, jobs and IPAM reservations: what a refusal must leave as it was."""
    with api.db.session(writer=False) as s:
        routes = sorted(
            (r.id, r.vip_ip, r.nexthop_ip, r.provisioning_status)
            for r in s.scalars(select(models.VipRoute))
        )
        jobs = s.scalar(select(func.count()).select_from(models.WorkerJob))
        allocations = sorted(
            (a.subnet_id, a.ip_address) for a in s.scalars(select(models.NetIpAllocation))
        )
    return routes, jobs, allocations


def _reserved(api: Api, address: str) -> bool:
    return any(ip == address for _, ip in _state(api)[2])


@pytest.mark.parametrize(("vip", "nexthop"), [(VIP4, NEXTHOP4), (VIP6, NEXTHOP6)], ids=["v4", "v6"])
def test_a_route_is_created_listed_shown_and_deleted_through_the_worker(
    api: Api, worker: Worker, fabric: dict[str, str], vip: str, nexthop: str
) -> None:
    made = _post(api, fabric["id"], vip_ip=vip, nexthop_ip=nexthop, name="udp")
    assert made.status_code == 201, made.text
    route = made.json()["vip"]
    assert route["provisioning_status"] == "PENDING_CREATE" and route["peer_id"] is None
    assert route["project_id"] == "project-a" and route["distributor_id"] == fabric["id"]
    assert _reserved(api, vip)  # no load balancer is handed the address
    taken = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": ANYCAST_V4.id, "vip_address": VIP4}}, TENANT_A)  # fmt: skip
    if vip == VIP4:
        assert taken.status_code == 409 and taken.json()["field"] == "vip_address", taken.text

    assert run_jobs(worker) >= 1
    path = f"{_path(fabric['id'])}/{route['id']}"
    shown = api.get(path, TENANT_A).json()["vip"]
    assert shown["provisioning_status"] == "ACTIVE", shown
    assert shown["operating_status"] == "OFFLINE"  # no amphora runs the speakers yet
    assert shown["status_reason"] is None
    listed = api.get(_path(fabric["id"]), TENANT_A).json()["vips"]
    assert [r["id"] for r in listed] == [route["id"]]
    assert api.get(_path(fabric["id"]), TENANT_A, params={"vip_ip": vip}).json()["vips"]

    deleted = api.delete(path, TENANT_A)
    assert deleted.status_code == 204, deleted.text
    assert api.get(path, TENANT_A).json()["vip"]["provisioning_status"] == "PENDING_DELETE"
    again = api.delete(path, TENANT_A)
    assert again.status_code == 409, again.text  # pending: immutable
    run_jobs(worker)
    assert api.get(path, TENANT_A).status_code == 404
    assert not _reserved(api, vip)  # released with the last route of the VIP


def test_routes_of_one_vip_share_its_reservation_until_the_last_goes(
    api: Api, worker: Worker, fabric: dict[str, str]
) -> None:
    first = _post(api, fabric["id"], vip_ip=VIP4, nexthop_ip=NEXTHOP4).json()["vip"]
    second = _post(api, fabric["id"], vip_ip=VIP4, nexthop_ip="198.18.1.201",
                   peer_id=fabric["peer4"])  # fmt: skip
    assert second.status_code == 201, second.text
    run_jobs(worker)
    assert api.delete(f"{_path(fabric['id'])}/{first['id']}", TENANT_A).status_code == 204
    run_jobs(worker)
    assert _reserved(api, VIP4)  # the second route still routes it
    route = second.json()["vip"]
    assert api.delete(f"{_path(fabric['id'])}/{route['id']}", TENANT_A).status_code == 204
    run_jobs(worker)
    assert not _reserved(api, VIP4)


# (id, fields, status, field named, words the message must hold)
REFUSALS: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("vip-missing", {"nexthop_ip": NEXTHOP4}, 400, "vip_ip", "required"),
    ("vip-not-an-address", {"vip_ip": "198.18.100.300", "nexthop_ip": NEXTHOP4}, 400, "vip_ip",
     "vip_ip"),
    ("unknown-field", {"vip_ip": VIP4, "nexthop_ip": NEXTHOP4, "colour": 1}, 400, "colour",
     "unknown"),
    ("vip-member-subnet", {"vip_ip": "198.18.3.150", "nexthop_ip": NEXTHOP4}, 400, "vip_ip",
     "anycast"),
    ("vip-frontend-subnet", {"vip_ip": "198.18.1.150", "nexthop_ip": NEXTHOP4}, 400, "vip_ip",
     "anycast"),
    ("vip-loopback", {"vip_ip": "127.0.0.1", "nexthop_ip": NEXTHOP4}, 400, "vip_ip", "loopback"),
    ("vip-unspecified", {"vip_ip": "0.0.0.0", "nexthop_ip": NEXTHOP4}, 400, "vip_ip",
     "unspecified"),
    ("vip-multicast-v6", {"vip_ip": "ff02::1", "nexthop_ip": NEXTHOP6}, 400, "vip_ip",
     "multicast"),
    ("vip-network-address", {"vip_ip": "198.18.100.0", "nexthop_ip": NEXTHOP4}, 409, "vip_ip",
     "cannot be used"),
    ("nexthop-other-family", {"vip_ip": VIP4, "nexthop_ip": NEXTHOP6}, 400, "nexthop_ip",
     "IPv6"),
    ("nexthop-member-subnet", {"vip_ip": VIP4, "nexthop_ip": "198.18.3.20"}, 400, "nexthop_ip",
     "front-end subnet"),
    ("nexthop-anycast", {"vip_ip": VIP4, "nexthop_ip": "198.18.100.201"}, 400, "nexthop_ip",
     "front-end subnet"),
    ("nexthop-gateway", {"vip_ip": VIP4, "nexthop_ip": "198.18.1.1"}, 409, "nexthop_ip",
     "gateway"),
    ("nexthop-gateway-v6", {"vip_ip": VIP6, "nexthop_ip": "fd00:198:18:1::1"}, 409,
     "nexthop_ip", "gateway"),
    ("peer-unknown", {"vip_ip": VIP4, "nexthop_ip": NEXTHOP4, "peer_id": "nope"}, 404,
     "peer_id", "not found"),
    ("peer-other-family", {"vip_ip": VIP6, "nexthop_ip": NEXTHOP6, "peer_id": "{peer4}"}, 400,
     "peer_id", "IPv4 peer"),
    ("peer-not-the-distributors", {"vip_ip": VIP4, "nexthop_ip": NEXTHOP4, "peer_id": "{lone}"},
     400, "peer_id", "not a peer of distributor"),
    ("duplicate", {"vip_ip": "{dup_vip}", "nexthop_ip": "{dup_nexthop}"}, 409, "vip_ip",
     "already routed"),
    ("duplicate-covered-peer", {"vip_ip": "{dup_vip}", "nexthop_ip": "{dup_nexthop}",
     "peer_id": "{peer4}"}, 409, "vip_ip", "every peer"),
    ("other-lb-vip", {"vip_ip": "{lb_vip}", "nexthop_ip": NEXTHOP4}, 409, "vip_ip",
     "load balancer"),
    ("other-project-vip", {"vip_ip": "{b_vip}", "nexthop_ip": "198.18.1.202"}, 409, "vip_ip",
     "another project"),
]  # fmt: skip


def build_world(api: Api) -> dict[str, str]:
    """The dual-stack distributor (``fabric``), an existing route of project A and one of
    project B (both ACTIVE through the worker), a peer on no speaker of the distributor, and
    another project's load balancer (created last: its job is never run here)."""
    worker = api.worker
    fabric = build_fabric(api, worker)
    dup = _post(api, fabric["id"], vip_ip="198.18.100.210", nexthop_ip="198.18.1.210")
    b_route = _post(api, fabric["id"], TENANT_B, vip_ip="198.18.100.211",
                    nexthop_ip="198.18.1.211")  # fmt: skip
    assert dup.status_code == 201 and b_route.status_code == 201, (dup.text, b_route.text)
    run_jobs(worker)
    lone = api.create("/v2/lbaas/bgppeers", "bgp_peer", ADMIN, name="lone",
                      peer_ip="198.18.0.9", remote_as=65009)  # fmt: skip
    lb = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": ANYCAST_V4.id, "vip_address": "198.18.100.212"}}, TENANT_B)  # fmt: skip
    assert lb.status_code == 201, lb.text
    return {**fabric, "dup_vip": "198.18.100.210", "dup_nexthop": "198.18.1.210",
            "b_vip": "198.18.100.211", "lone": lone["id"], "lb_vip": "198.18.100.212"}  # fmt: skip


world_template, db_url, world = world_fixtures(build_world)


@pytest.mark.parametrize(
    ("fields", "status", "field", "words"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_a_bad_route_is_refused_naming_the_field_and_changes_nothing(
    api: Api,
    world: dict[str, str],
    fields: dict[str, Any],
    status: int,
    field: str,
    words: str,
) -> None:
    """As a tenant, and as an admin acting for the tenant's project: the same refusal."""
    body = {k: v.format(**world) if isinstance(v, str) else v for k, v in fields.items()}
    before = _state(api)
    for headers, extra in ((TENANT_A, {}), (ADMIN, {"project_id": "project-a"})):
        response = api.post(_path(world["id"]), {"vip": {**body, **extra}}, headers)
        assert response.status_code == status, response.text
        fault = response.json()
        assert fault["field"] == field and words in fault["faultstring"], fault
        assert _state(api) == before


def test_routes_are_scoped_to_their_project(
    api: Api, worker: Worker, fabric: dict[str, str]
) -> None:
    route = _post(api, fabric["id"], vip_ip=VIP4, nexthop_ip=NEXTHOP4).json()["vip"]
    run_jobs(worker)
    path = f"{_path(fabric['id'])}/{route['id']}"
    assert api.get(_path(fabric["id"]), TENANT_B).json()["vips"] == []
    assert api.get(path, TENANT_B).status_code == 404
    assert api.delete(path, TENANT_B).status_code == 404
    assert api.get(path, READER_A).status_code == 200  # a reader of A sees it
    assert _post(api, fabric["id"], READER_A, vip_ip=VIP6, nexthop_ip=NEXTHOP6).status_code == 403
    assert api.delete(path, READER_A).status_code == 403
    assert [r["id"] for r in api.get(_path(fabric["id"]), ADMIN).json()["vips"]] == [route["id"]]
    made = _post(api, fabric["id"], ADMIN, vip_ip=VIP6, nexthop_ip=NEXTHOP6, project_id="p-c")
    assert made.status_code == 201 and made.json()["vip"]["project_id"] == "p-c", made.text
    other = _post(api, fabric["id"], TENANT_B, vip_ip=VIP6, nexthop_ip="fd00:198:18:1::201",
                  project_id="p-c")  # fmt: skip
    assert other.status_code == 403, other.text  # only an admin creates for another project
    unknown = _post(api, "nope", vip_ip=VIP4, nexthop_ip="198.18.1.203")
    assert unknown.status_code == 404 and unknown.json()["field"] == "distributor_id"
    elsewhere = api.get(f"{_path('nope')}/{route['id']}", TENANT_A)
    assert elsewhere.status_code == 404


def test_a_distributor_that_is_not_active_takes_no_route(api: Api, worker: Worker) -> None:
    """PENDING_CREATE (its job not run yet), then ERROR (its speaker has no peer: the worker
    refused it): 409 distributor_id, nothing changed."""
    speaker = api.create("/v2/lbaas/bgpspeakers", "bgp_speaker", ADMIN, name="bare",
                         ip_version=4, local_as=65001)  # fmt: skip
    made = api.create("/v2/lbaas/distributors", "distributor", ADMIN, settle=False, name="bare",
                      distributor_type="L3_BGP",
                      config_data={"bgp_speaker_ids": [speaker["id"]]})  # fmt: skip
    for expected in ("PENDING_CREATE", "ERROR"):
        before = _state(api)
        response = _post(api, made["id"], vip_ip=VIP4, nexthop_ip=NEXTHOP4)
        assert response.status_code == 409, response.text
        fault = response.json()
        assert fault["field"] == "distributor_id" and expected in fault["faultstring"], fault
        assert _state(api) == before
        run_jobs(worker)


def test_a_distributor_with_routes_is_not_deleted_nor_changed_under_a_pending_route(
    api: Api, worker: Worker, fabric: dict[str, str]
) -> None:
    route = _post(api, fabric["id"], vip_ip=VIP4, nexthop_ip=NEXTHOP4,
                  peer_id=fabric["peer4"]).json()["vip"]  # fmt: skip
    shown = api.get(f"/v2/lbaas/distributors/{fabric['id']}").json()["distributor"]
    changed = api.put(f"/v2/lbaas/distributors/{fabric['id']}",
                      {"distributor": {"config_data": {"bgp_speaker_ids": []}}})  # fmt: skip
    assert changed.status_code == 409 and changed.json()["field"] == "config_data", changed.text
    run_jobs(worker)
    assert api.get(f"/v2/lbaas/distributors/{fabric['id']}").json()["distributor"] == shown

    refused = api.delete(f"/v2/lbaas/distributors/{fabric['id']}")
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "id" and route["id"] in refused.json()["faultstring"]
    peer = api.delete(f"/v2/lbaas/bgppeers/{fabric['peer4']}")
    assert peer.status_code == 409, peer.text  # on a speaker, and named by the route
    speakers = shown["config_data"]["bgp_speaker_ids"]
    removed = api.put(f"/v2/lbaas/bgpspeakers/{speakers[0]}/remove_bgp_peer",
                      {"bgp_peer_id": fabric["peer4"]})  # fmt: skip
    assert removed.status_code == 409 and removed.json()["field"] == "bgp_peer_id", removed.text

    assert api.delete(f"{_path(fabric['id'])}/{route['id']}", TENANT_A).status_code == 204
    run_jobs(worker)
    assert api.delete(f"/v2/lbaas/distributors/{fabric['id']}").status_code == 204
