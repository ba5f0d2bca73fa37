"""A distributor's status is the product's: the API records it PENDING_CREATE with a job, the
real worker runs the L3_BGP driver's create subflow on it (its speakers and peer profiles
checked against the fabric's rules) and writes ACTIVE, or ERROR with the reason in
``/status``. A configuration change is checked again (PENDING_UPDATE); a change while one is
pending is refused and changes nothing. The worker here has the noop compute and network
drivers: the distributor's flow uses neither."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

from l3dist.common.config import HealthConfig
from l3dist.contracts.heartbeat import Heartbeat, encode
from l3dist.controller.worker import Worker
from l3dist.db import jobs
from l3dist.db.models import Amphora, AmphoraHealth, WorkerJob, utcnow
from l3dist.health.manager import HealthManager
from l3dist_lab.controlplane import free_port

from .conftest import ADMIN, ANYCAST_V4, TENANT_A, Api, run_jobs


def speaker(api: Api, name: str, version: int, peer_ip: str | None) -> dict[str, Any]:
    made = api.create("/v2/lbaas/bgpspeakers", "bgp_speaker", headers=ADMIN, name=name,
                      ip_version=version, local_as=65001)  # fmt: skip
    if peer_ip is not None:
        peer = api.create("/v2/lbaas/bgppeers", "bgp_peer", headers=ADMIN, name=f"{name}-peer",
                          peer_ip=peer_ip, remote_as=65000)  # fmt: skip
        added = api.client.put(f"/v2/lbaas/bgpspeakers/{made['id']}/add_bgp_peer",
                               json={"bgp_peer_id": peer["id"]}, headers=ADMIN)  # fmt: skip
        assert added.status_code == 200, added.text
    return made


def distributor(api: Api, name: str, speaker_ids: list[str]) -> dict[str, Any]:
    response = api.post("/v2/lbaas/distributors", {"distributor": {
        "name": name, "distributor_type": "L3_BGP",
        "config_data": {"bgp_speaker_ids": speaker_ids}}}, ADMIN)  # fmt: skip
    assert response.status_code == 201, response.text
    return dict(response.json()["distributor"])


def status(api: Api, distributor_id: str) -> dict[str, Any]:
    return dict(api.get(f"/v2/lbaas/distributors/{distributor_id}/status").json()["distributor"])


def test_the_worker_makes_a_distributor_active_or_error(api: Api, worker: Worker) -> None:
    good = speaker(api, "v4", 4, "198.18.0.1")
    lonely = speaker(api, "v6-no-peer", 6, None)
    fabric = distributor(api, "fabric", [good["id"]])
    broken = distributor(api, "broken", [lonely["id"]])
    assert (fabric["status"], broken["status"]) == ("PENDING_CREATE", "PENDING_CREATE")

    assert run_jobs(worker) == 2
    assert status(api, fabric["id"])["status"] == "ACTIVE"
    assert status(api, fabric["id"])["status_reason"] is None
    refused = status(api, broken["id"])
    assert refused["status"] == "ERROR"
    assert f"BGP speaker {lonely['id']} has no BGP peer" in refused["status_reason"]

    # A change is checked again; one asked while it is pending is refused and changes nothing.
    path = f"/v2/lbaas/distributors/{broken['id']}"
    both = {"distributor": {"config_data": {"bgp_speaker_ids": [good["id"]]}}}
    changed = api.client.put(path, json=both, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert changed.json()["distributor"]["status"] == "PENDING_UPDATE"
    again = {"distributor": {"config_data": {"bgp_speaker_ids": [lonely["id"]]}}}
    busy = api.client.put(path, json=again, headers=ADMIN)
    assert busy.status_code == 409 and busy.json()["field"] == "config_data", busy.text
    assert api.get(path).json()["distributor"]["config_data"]["bgp_speaker_ids"] == [good["id"]]
    assert run_jobs(worker) == 1
    assert status(api, broken["id"])["status"] == "ACTIVE"

    # The same configuration again, or a new name: nothing for the driver to check.
    renamed = api.client.put(path, json={"distributor": {"name": "mended"}}, headers=ADMIN)
    assert renamed.json()["distributor"]["status"] == "ACTIVE"
    assert run_jobs(worker) == 0
    with api.db.session(writer=False) as session:
        flows = sorted(j.flow for j in session.query(WorkerJob))
    assert flows == [jobs.CREATE_DISTRIBUTOR] * 2 + [jobs.UPDATE_DISTRIBUTOR]


def test_an_error_distributor_is_checked_again_once_fixed(api: Api, worker: Worker) -> None:
    """The operator adds the peer the driver missed: the distributor using the speaker is
    checked again (PENDING_UPDATE, a job) and becomes ACTIVE. The same configuration sent
    again is checked again too (a fix the API cannot see)."""
    lonely = speaker(api, "v4-alone", 4, None)
    made = distributor(api, "alone", [lonely["id"]])
    assert run_jobs(worker) == 1
    assert status(api, made["id"])["status"] == "ERROR"
    same = {"distributor": {"config_data": {"bgp_speaker_ids": [lonely["id"]]}}}
    again = api.client.put(f"/v2/lbaas/distributors/{made['id']}", json=same, headers=ADMIN)
    assert again.json()["distributor"]["status"] == "PENDING_UPDATE", again.text
    assert run_jobs(worker) == 1
    assert status(api, made["id"])["status"] == "ERROR", "still no peer"
    peer = api.create("/v2/lbaas/bgppeers", "bgp_peer", headers=ADMIN, name="tor",
                      peer_ip="198.18.0.1", remote_as=65000)  # fmt: skip
    added = api.client.put(f"/v2/lbaas/bgpspeakers/{lonely['id']}/add_bgp_peer",
                           json={"bgp_peer_id": peer["id"]}, headers=ADMIN)  # fmt: skip
    assert added.status_code == 200, added.text
    assert status(api, made["id"])["status"] == "PENDING_UPDATE"
    assert run_jobs(worker) == 1
    assert status(api, made["id"])["status"] == "ACTIVE"


def test_peer_profile_and_speaker_changes_reach_the_distributor(api: Api, worker: Worker) -> None:
    """A change to what its amphorae run (a peer's settings, the speaker's AS, its peers) puts
    each distributor using it through the worker again (the roll to its amphorae: here it has
    none); a rename does not; a change while the distributor is pending is 409 and changes
    nothing."""
    used = speaker(api, "v4", 4, "198.18.0.1")
    made = distributor(api, "fabric", [used["id"]])
    assert run_jobs(worker) == 1 and status(api, made["id"])["status"] == "ACTIVE"
    peer_id = api.get(f"/v2/lbaas/bgpspeakers/{used['id']}").json()["bgp_speaker"]["peers"][0]
    peer_path = f"/v2/lbaas/bgppeers/{peer_id}"

    renamed = api.put(peer_path, {"bgp_peer": {"name": "tor-renamed"}})
    assert renamed.status_code == 200, renamed.text
    assert status(api, made["id"])["status"] == "ACTIVE" and run_jobs(worker) == 0

    slower = api.put(peer_path, {"bgp_peer": {"bfd_receive_interval_ms": 300}})
    assert slower.status_code == 200, slower.text
    assert status(api, made["id"])["status"] == "PENDING_UPDATE"
    before = api.snapshot()
    busy = api.put(peer_path, {"bgp_peer": {"hold_time": 30}})
    assert (busy.status_code, busy.json()["field"]) == (409, "id"), busy.text
    assert made["id"] in busy.json()["faultstring"]
    assert api.snapshot() == before, "refused: the hold time is unchanged"
    assert run_jobs(worker) == 1 and status(api, made["id"])["status"] == "ACTIVE"

    assert api.put(f"/v2/lbaas/bgpspeakers/{used['id']}",
                   {"bgp_speaker": {"local_as": 65002}}).status_code == 200  # fmt: skip
    assert status(api, made["id"])["status"] == "PENDING_UPDATE"
    assert run_jobs(worker) == 1 and status(api, made["id"])["status"] == "ACTIVE"

    removed = api.put(f"/v2/lbaas/bgpspeakers/{used['id']}/remove_bgp_peer",
                      {"bgp_peer_id": peer_id})  # fmt: skip
    assert removed.status_code == 200, removed.text
    assert run_jobs(worker) == 1
    checked = status(api, made["id"])
    assert checked["status"] == "ERROR" and "has no BGP peer" in checked["status_reason"]
    added = api.put(f"/v2/lbaas/bgpspeakers/{used['id']}/add_bgp_peer", {"bgp_peer_id": peer_id})
    assert added.status_code == 200, added.text
    assert run_jobs(worker) == 1 and status(api, made["id"])["status"] == "ACTIVE"

    # A load balancer being built on it may have read the old settings: 409 meanwhile.
    building = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": ANYCAST_V4.id, "topology": "ACTIVE_ACTIVE", "amphora_count": 2}},
        TENANT_A).json()["loadbalancer"]  # fmt: skip
    assert building["provisioning_status"] == "PENDING_CREATE"
    before = api.snapshot()
    refused = api.put(peer_path, {"bgp_peer": {"hold_time": 30}})
    assert (refused.status_code, refused.json()["field"]) == (409, "id"), refused.text
    assert building["id"] in refused.json()["faultstring"]
    assert api.snapshot() == before


def dedicated_with_lb(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A dedicated distributor (2 amphorae) made ACTIVE by the worker, a load balancer on it
    with 2 amphorae and a listener (registered), and a VIP route."""
    v4 = speaker(api, "v4", 4, "198.18.0.1")
    made = api.create("/v2/lbaas/distributors", "distributor", ADMIN, name="dedicated",
                      distributor_type="L3_BGP", config_data={"bgp_speaker_ids": [v4["id"]],
                      "mode": "dedicated", "distributor_amphorae": 2})  # fmt: skip
    assert status(api, made["id"])["status"] == "ACTIVE"
    lb = api.create_lb(topology="ACTIVE_ACTIVE", amphora_count=2, distributor_id=made["id"])
    api.create("/v2/lbaas/listeners", "listener", loadbalancer_id=lb["id"], protocol="HTTP",
               protocol_port=80)  # fmt: skip
    route = api.create(f"/v2/lbaas/distributors/{made['id']}/vips", "vip", ADMIN,
                       vip_ip="198.18.100.200", nexthop_ip="198.18.1.200")  # fmt: skip
    return made, lb, route


def listed(api: Api, **filters: str) -> list[dict[str, Any]]:
    """The amphorae the API lists, those whose fields have the given values."""
    rows = api.get("/v2/octavia/amphorae").json()["amphorae"]
    return [a for a in rows if all(a.get(k) == v for k, v in filters.items())]


def test_a_dead_distributor_amphora_is_replaced_and_the_replacement_announces(
    api: Api, worker: Worker, tmp_path: Path
) -> None:
    """Dedicated mode: the health manager finds a distributor amphora silent and queues its
    failover; the worker builds a replacement that registers every load-balancing amphora
    and the VIP routes, the load-balancing amphorae answer its BFD, the dead one is DELETED
    and the distributor ACTIVE again (noop compute and amphora drivers: the bookkeeping; the
    lab test proves the paths)."""
    made, lb, route = dedicated_with_lb(api)

    def amphorae(**filters: str) -> list[dict[str, Any]]:
        return listed(api, **filters)

    balancers = amphorae(loadbalancer_id=lb["id"])
    old = amphorae(distributor_id=made["id"], status="ALLOCATED")
    assert len(old) == 2 and len(balancers) == 2
    dead, alive = old

    key = b"k" * 32
    config = HealthConfig(bind_port=free_port(), heartbeat_key=key.decode(), heartbeat_timeout=5)
    manager = HealthManager(config, api.db, key)
    try:
        for amp in old:  # both heard once: the health manager records them
            manager.handle(encode(Heartbeat(amphora_id=amp["id"], seq=1, sent_at=time.time()),
                                  key))  # fmt: skip
        with api.db.session() as s:  # then only the live one: the other's last one is old
            health = s.get(AmphoraHealth, dead["id"])
            assert health is not None
            health.last_update = utcnow() - datetime.timedelta(seconds=60)
        assert manager.check() == [dead["id"]]
        assert status(api, made["id"])["status"] == "PENDING_UPDATE"
        assert manager.check() == []  # claimed once
    finally:
        manager.close()
    assert run_jobs(worker) == 1

    assert status(api, made["id"])["status"] == "ACTIVE"
    now = amphorae(distributor_id=made["id"], status="ALLOCATED")
    assert {a["id"] for a in now} - {alive["id"]} and dead["id"] not in {a["id"] for a in now}
    (replacement,) = [a for a in now if a["id"] != alive["id"]]
    assert amphorae(id=dead["id"]) == []  # the API lists no DELETED amphora
    with api.db.session(writer=False) as s:
        row = s.get(Amphora, dead["id"])
        assert row is not None and row.status == "DELETED"
        assert s.get(AmphoraHealth, dead["id"]) is None
    agents = worker.services.amphora.agents  # type: ignore[attr-defined]
    told = agents.get(replacement["compute_id"] or replacement["id"])
    assert {(k[0], k[2]) for k in told.registrations} == {
        (a["id"], a["frontend_ip"]) for a in balancers
    }
    assert {k[:2] for k in told.vip_routes} == {(route["vip_ip"], route["nexthop_ip"])}
    # The load-balancing amphorae answer the running distributor amphorae's BFD: the
    # replacement's front end is among the peers, the dead one's is not.
    for amp in balancers:
        peers = set(agents.get(amp["compute_id"] or amp["id"]).bfd_peers["peers"])
        assert replacement["frontend_ip"] in peers and dead["frontend_ip"] not in peers, peers


def test_a_dedicated_distributor_scales_out_and_in(api: Api, worker: Worker) -> None:
    """distributor_amphorae 2 -> 3: the worker builds one more, which announces every path
    and VIP route, and the load-balancing amphorae answer its BFD; 3 -> 2: the newest goes.
    The BFD timers stay what they were made with (409 naming the key, nothing changed)."""
    made, lb, route = dedicated_with_lb(api)
    path = f"/v2/lbaas/distributors/{made['id']}"
    config = dict(made["config_data"])
    agents = worker.services.amphora.agents  # type: ignore[attr-defined]
    balancers = listed(api, loadbalancer_id=lb["id"])
    before = listed(api, distributor_id=made["id"])

    def bfd_peers() -> list[set[str]]:
        return [set(agents.get(a["compute_id"]).bfd_peers["peers"]) for a in balancers]

    answer = api.put(path, {"distributor": {"config_data": {**config, "distributor_amphorae": 3}}})
    assert answer.status_code == 200, answer.text
    assert status(api, made["id"])["status"] == "PENDING_UPDATE"
    run_jobs(worker)
    assert status(api, made["id"])["status"] == "ACTIVE"
    now = listed(api, distributor_id=made["id"])
    assert len(now) == 3 and {a["id"] for a in before} < {a["id"] for a in now}
    (added,) = [a for a in now if a["id"] not in {b["id"] for b in before}]
    told = agents.get(added["compute_id"])
    assert {(k[0], k[2]) for k in told.registrations} == {
        (a["id"], a["frontend_ip"]) for a in balancers
    }
    assert {k[:2] for k in told.vip_routes} == {(route["vip_ip"], route["nexthop_ip"])}
    assert bfd_peers() == [{a["frontend_ip"] for a in now}] * len(balancers)

    answer = api.put(path, {"distributor": {"config_data": {**config, "distributor_amphorae": 2}}})
    assert answer.status_code == 200, answer.text
    run_jobs(worker)
    assert status(api, made["id"])["status"] == "ACTIVE"
    assert {a["id"] for a in listed(api, distributor_id=made["id"])} == {a["id"] for a in before}
    assert bfd_peers() == [{a["frontend_ip"] for a in before}] * len(balancers)

    snapshot = api.snapshot()
    slower = {**config, "nexthop_bfd": {**config["nexthop_bfd"], "detect_multiplier": 5}}
    refused = api.put(path, {"distributor": {"config_data": slower}})
    assert refused.status_code == 409, refused.text
    assert refused.json()["field"] == "config_data.nexthop_bfd"
    assert api.snapshot() == snapshot
