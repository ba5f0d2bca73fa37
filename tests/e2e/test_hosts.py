"""The operator's path (issue 13): the lab only simulates the datacenter (router, networks,
five racked hosts); l3dist runs on it as on real hosts. The API, worker and health manager are
separate processes on PostgreSQL with a production configuration (``static`` network driver,
``hosts`` compute driver); the networks are defined through the admin API; each host's agent
enrolls with a one-time token and runs ``l3dist-agent run`` with only its agent.toml.

Proved here: a load balancer on 3 of the 5 hosts carries traffic through the router; scale-out
takes a fourth; more amphorae than free hosts is ERROR with the reason and nothing held, stays
ERROR when a listener is added, and a failover repairs it once hosts are free; delete
returns every host clean (no route at the router, no namespace, VIP, HAProxy or nft table on
the host); and no controller process ever imported a lab module (their import logs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from l3dist.amphora_client import AgentClient
from l3dist.bgp.base import host_prefix
from l3dist.certificates import client_context
from l3dist.db import jobs
from l3dist.db.models import WorkerJob
from l3dist.db.session import Database
from l3dist_lab import fabric, hosts, scenario
from l3dist_lab import site as lab_site
from l3dist_lab.config import TOR_NS
from l3dist_lab.fib import FibWatcher
from l3dist_lab.traffic import run_clients
from tests.conftest import database_url

from .conftest import Controller, controller_on_site, lb_path, wait_until


@pytest.fixture(scope="module")
def ctl(lab_prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    work = tmp_path_factory.mktemp("hosts")
    with database_url("postgresql", work) as product_db:
        # Every module each controller process imports goes to its log: checked below.
        # The health manager's own retry of UNREACHABLE hosts (every 30 s) stays out of
        # these tests' time: a returned host is reset by its fenced heartbeats, or by the
        # operator's reset (tests/db covers the retry).
        yield from controller_on_site(product_db, work, PYTHONPROFILEIMPORTTIME="1")


def test_a_tenant_cannot_make_the_router_route_a_foreign_address(ctl: Controller) -> None:
    """Route safety through the whole control plane (issue 14): hijack attempts by a tenant
    are refused with the field named, nothing is built, and the router learns nothing."""
    site = ctl.site
    tenant = {"X-Project-Id": "tenant-a", "X-Roles": "member"}
    member_ip = ctl.members[0].ip4
    attempts = [
        ({"vip_subnet_id": site.subnets["member-net-v4"], "vip_address": "198.18.3.150"},
         400, "vip_subnet_id"),
        ({"vip_subnet_id": site.subnets["frontend-net-v4"], "vip_address": "198.18.1.77"},
         400, "vip_subnet_id"),
        ({"vip_subnet_id": site.subnets["lb-mgmt-net-v4"], "vip_address": "198.18.0.1"},
         400, "vip_subnet_id"),
        ({"vip_subnet_id": site.subnets["anycast-net-v4"],
          "frontend_subnet_id": site.subnets["member-net-v4"]}, 400, "frontend_subnet_id"),
    ]  # fmt: skip
    for fields, status, field in attempts:
        body = {"loadbalancer": {**fields, "topology": "ACTIVE_ACTIVE", "amphora_count": 2,
                                 "distributor_id": site.distributor["id"]}}  # fmt: skip
        response = ctl.http.post("/v2/lbaas/loadbalancers", json=body, headers=tenant)
        assert response.status_code == status, response.text
        assert response.json()["field"] == field, response.text
    assert ctl.call("GET", "/v2/lbaas/loadbalancers")["loadbalancers"] == []
    assert {h["status"] for h in ctl.site.pool().values()} == {"AVAILABLE"}  # no host claimed
    for address in ("198.18.3.150", "198.18.1.77", "198.18.0.1", member_ip):
        assert fabric.fib_nexthops(host_prefix(address)) == []


def test_load_balancers_run_on_enrolled_hosts(ctl: Controller) -> None:
    site = ctl.site
    assert {h["status"] for h in ctl.site.pool().values()} == {"AVAILABLE"}

    lb = scenario.create_lb(ctl, site.distributor["id"], 3, subnets=site.subnets)
    lb = scenario.add_web_service(ctl, lb, ctl.members)
    amphorae = {a["id"]: a for a in scenario.amphorae_of(ctl, lb["id"])}
    held = {h["amphora_id"]: h for h in ctl.site.pool().values() if h["status"] == "ALLOCATED"}
    assert set(held) == set(amphorae)  # one host per amphora, three of the five
    for amphora_id, amp in amphorae.items():
        assert amp["compute_id"] == held[amphora_id]["id"]
        assert amp["lb_network_ip"] == held[amphora_id]["management_address"]
    assert scenario.wait_for_ecmp(ctl, lb, 3) == {a["frontend_ip"] for a in amphorae.values()}
    result = run_clients(lb["vip_address"], 300)
    assert result["failures"] == 0, result
    assert set(result["per_amphora"]) == set(amphorae), result
    assert set(result["per_member"]) == {"m1", "m2"}, result

    # Scale-out takes a fourth host.
    ctl.call("PUT", lb_path(lb), {"loadbalancer": {"amphora_count": 4}})
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    scenario.wait_for_ecmp(ctl, lb, 4)
    assert sum(h["status"] == "ALLOCATED" for h in ctl.site.pool().values()) == 4

    # More amphorae than free hosts: ERROR, and the one free host is not left claimed.
    greedy = ctl.call("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "vip_subnet_id": site.subnets["anycast-net-v4"], "topology": "ACTIVE_ACTIVE",
        "amphora_count": 2, "distributor_id": site.distributor["id"]}}, expect=201,
    )["loadbalancer"]  # fmt: skip
    wait_until(
        lambda: ctl.call("GET", lb_path(greedy))["loadbalancer"]["provisioning_status"] == "ERROR",
        90,
        "the load balancer that found no host in ERROR",
    )

    # The operator sees why: the status tree's reason, the worker's error (recorded when the
    # flow's revert, which wrote ERROR, has ended).
    def reason() -> str | None:
        tree = ctl.call("GET", f"{lb_path(greedy)}/status")["statuses"]["loadbalancer"]
        return tree["status_reason"]  # type: ignore[no-any-return]

    wait_until(lambda: reason() is not None, 30, "the reason of the ERROR")
    assert "no free amphora host" in str(reason()), reason()
    assert [h["status"] for h in ctl.site.pool().values()].count("AVAILABLE") == 1
    assert scenario.amphorae_of(ctl, greedy["id"]) == [], "the revert kept nothing"

    # ACTIVE means what it says (issue 19): a listener added to it does not make it ACTIVE
    # with none of its amphorae; it stays ERROR, and says why.
    ctl.call("POST", "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": greedy["id"], "protocol": "TCP", "protocol_port": 80}},
        expect=201)  # fmt: skip
    wait_until(lambda: "has 0 of its 2 amphorae" in str(reason()), 60, "the listener's refusal")
    shown = ctl.call("GET", lb_path(greedy))["loadbalancer"]
    assert shown["provisioning_status"] == "ERROR", shown
    assert scenario.amphorae_of(ctl, greedy["id"]) == []

    # Repaired by a failover once there are hosts: the first load balancer gives one back,
    # then the failover builds both amphorae (VIP, distributor, listener and all).
    ctl.call("PUT", lb_path(lb), {"loadbalancer": {"amphora_count": 3}})
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    scenario.wait_for_ecmp(ctl, lb, 3)
    ctl.call("PUT", f"{lb_path(greedy)}/failover", expect=202)
    repaired = ctl.wait_for(lb_path(greedy), "loadbalancer", "ACTIVE", timeout=120)
    assert repaired["operating_status"] == "ONLINE", repaired
    built = scenario.amphorae_of(ctl, greedy["id"])
    assert len(built) == 2, built
    assert scenario.wait_for_ecmp(ctl, repaired, 2) == {a["frontend_ip"] for a in built}
    tree = ctl.call("GET", f"{lb_path(greedy)}/status")["statuses"]["loadbalancer"]
    assert [li["provisioning_status"] for li in tree["listeners"]] == ["ACTIVE"], tree
    ctl.call("DELETE", f"{lb_path(greedy)}?cascade=true", expect=204)

    # Delete returns every host clean.
    scenario.delete_lb(ctl, lb)
    wait_until(lambda: fabric.fib_nexthops(host_prefix(lb["vip_address"])) == [], 30)
    wait_until(
        lambda: {h["status"] for h in ctl.site.pool().values()} == {"AVAILABLE"},
        60,
        "every host back in the pool",
    )
    assert all(h["amphora_id"] is None for h in ctl.site.pool().values())
    for host in site.hosts:
        assert hosts.leftovers(host) == [], host.name

    # The controller's processes never imported the lab (their import-time logs).
    for name in ("api", "worker", "health", "routerview"):
        log = ctl.log_path(name).read_text()
        assert "import time:" in log  # the check can see imports
        assert "l3dist_lab" not in log, f"{name} imported a lab module"


def _reset_jobs_waiting(ctl: Controller) -> bool:
    with Database(ctl.database_url).session(writer=False) as session:
        return jobs.waiting(session, jobs.RESET_HOST) > 0


def _agent_state(ctl: Controller, host_id: str, address: str) -> dict[str, Any]:
    context = client_context(ctl.state_dir / "ca")
    with AgentClient(host_id, address, context, timeout=5) as client:
        return client.host_amphora()


def test_a_host_failed_over_never_announces_again(ctl: Controller) -> None:
    """A host frozen past its failover, and one cut off from the management network past
    it, are replaced from the pool; thawed and reconnected, their BGP sessions come back but
    they announce nothing (fenced); the controller resets them and offers them again."""
    site = ctl.site
    lb = scenario.create_lb(ctl, site.distributor["id"], 3, subnets=site.subnets)
    lb = scenario.add_web_service(ctl, lb, ctl.members)
    scenario.wait_for_ecmp(ctl, lb, 3)
    by_id = {h.host_id: h for h in site.hosts}
    amps = scenario.amphorae_of(ctl, lb["id"])
    frozen, cut = (by_id[a["compute_id"]] for a in amps[:2])
    old = {a["id"]: a for a in amps[:2]}
    prefix = host_prefix(lb["vip_address"])
    with FibWatcher() as fib:
        lab_site.freeze(frozen)  # its processes, and its kernel: a hung machine answers nothing
        lab_site.management_link(cut, up=False)
        try:

            def replaced() -> bool:
                shown = ctl.call("GET", lb_path(lb))["loadbalancer"]
                ids = {a["id"] for a in scenario.amphorae_of(ctl, lb["id"])}
                return not ids & set(old) and shown["provisioning_status"] == "ACTIVE"

            wait_until(replaced, 120, "both replaced from the pool, load balancer ACTIVE")
            hops = scenario.wait_for_ecmp(ctl, lb, 3)
        finally:
            lab_site.thaw(frozen)
            lab_site.management_link(cut, up=True)
        back = len(fib.history)
        zombies = {frozen.mgmt_ip4, cut.mgmt_ip4}
        seen_from_zombies: list[str] = []
        # Back on the network, their speakers may re-establish their sessions by themselves
        # until the controller resets them: all along, the router's paths for the VIP never
        # come from them (their old front-end addresses may be a replacement's now).
        deadline = time.monotonic() + 60
        while True:
            paths = json.dumps(fabric.vtysh_json(f"show bgp ipv4 unicast {prefix} json"))
            seen_from_zombies += [z for z in zombies if f'"{z}"' in paths]
            reset = {ctl.site.pool()[h.name]["status"] for h in (frozen, cut)} == {"AVAILABLE"}
            if reset or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        removed = [c for c in fib.history[back:] if c.prefix == prefix and not c.nexthops]
    assert seen_from_zombies == [], "a failed-over host announced its old VIP again"
    assert removed == [] and set(fabric.fib_nexthops(prefix)) == hops
    # Heard again (fenced), their amphorae long replaced: the controller reset both hosts,
    # and they are offered again clean.
    assert reset, "the returned hosts reset and back in the pool in 60 s"
    for host in (frozen, cut):
        assert host.host_id is not None
        state = _agent_state(ctl, host.host_id, host.mgmt_ip4)
        assert state["amphora_id"] is None and not state["namespace"], state
        assert hosts.leftovers(host) == [], host.name
    result = run_clients(lb["vip_address"], 200)
    assert result["failures"] == 0, result
    scenario.delete_lb(ctl, lb)


def test_a_router_outage_fences_and_the_controller_clears_it(ctl: Controller) -> None:
    """The router's BGP daemon stalls longer than the heartbeat timeout: every amphora loses
    its sessions and fences itself, but its heartbeats still arrive, so the controller clears
    the fences (no failover); when the router is back, the same amphorae carry the VIP."""
    site = ctl.site
    lb = scenario.create_lb(ctl, site.distributor["id"], 2, subnets=site.subnets)
    lb = scenario.add_web_service(ctl, lb, ctl.members)
    hops = scenario.wait_for_ecmp(ctl, lb, 2)
    amps = {a["id"] for a in scenario.amphorae_of(ctl, lb["id"])}
    bgpd = int(subprocess.run(["cat", f"/var/run/frr/{TOR_NS}/bgpd.pid"], capture_output=True,
                              text=True, check=True).stdout)  # fmt: skip

    def fenced_and_queued() -> set[str]:
        with Database(ctl.database_url).session() as session:
            cleared = session.scalars(
                select(WorkerJob.arguments).where(WorkerJob.flow == "clear_fence")
            ).all()
        return {args["amphora_id"] for args in cleared}

    os.kill(bgpd, signal.SIGSTOP)
    try:
        # hold timer 3 s, then fence_after 3 s of no session, then a fenced heartbeat: every
        # amphora fences itself and the controller queues the clearing of each fence.
        wait_until(lambda: fenced_and_queued() >= amps, 20, "every amphora fenced")
    finally:
        os.kill(bgpd, signal.SIGCONT)

    def cleared_and_routed() -> bool:
        # The router's sessions may flap once more as it recovers (another fence, cleared too).
        states = [_agent_state(ctl, a["compute_id"], a["lb_network_ip"])
                  for a in scenario.amphorae_of(ctl, lb["id"])]  # fmt: skip
        unfenced = all(state["fenced"] is None for state in states)
        return unfenced and set(fabric.fib_nexthops(host_prefix(lb["vip_address"]))) == hops

    # Converged: cleared and routed for longer than a second fence cycle would take (hold
    # timer plus fence_after), since the recovering router's sessions may flap once more.
    steady_since: list[float] = []

    def steady() -> bool:
        if not cleared_and_routed():
            steady_since.clear()
            return False
        steady_since[:1] = steady_since[:1] or [time.monotonic()]
        return time.monotonic() - steady_since[0] >= 7.0

    wait_until(steady, 90, "fences cleared and the same amphorae routed again, steadily")
    assert {a["id"] for a in scenario.amphorae_of(ctl, lb["id"])} == amps  # none failed over
    result = run_clients(lb["vip_address"], 200)
    assert result["failures"] == 0, result
    scenario.delete_lb(ctl, lb)


def test_a_host_that_did_not_answer_is_skipped_and_offered_again(ctl: Controller) -> None:
    """The first host of the pool has its agent down when a load balancer is built: the build
    moves on to the next host and the silent one is UNREACHABLE, out of the pool; the operator's
    reset while it is still down leaves it so. Its agent back, the reset (``PUT
    .../amphora-hosts/{id}/reset``, what ``l3dist amphora-host reset`` calls) has a worker reset
    it and it is AVAILABLE again; a reset of the host holding the amphora is refused."""
    site = ctl.site
    first = site.hosts[0]
    assert {h["status"] for h in ctl.site.pool().values()} == {"AVAILABLE"}
    hosts.stop_agent(first)
    try:
        lb = scenario.create_lb(ctl, site.distributor["id"], 1, subnets=site.subnets)
        (amp,) = scenario.amphorae_of(ctl, lb["id"])
        assert amp["compute_id"] != first.host_id
        assert ctl.site.pool()[first.name]["status"] == "UNREACHABLE"
        assert ctl.site.pool()[first.name]["amphora_id"] is None
        reset_path = f"/v2/octavia/amphora-hosts/{first.host_id}/reset"
        ctl.call("PUT", reset_path, expect=202)
        wait_until(lambda: not _reset_jobs_waiting(ctl), 30, "the reset job done")
        assert ctl.site.pool()[first.name]["status"] == "UNREACHABLE"  # still silent
    finally:
        hosts.start_agent(first)
    ctl.call("PUT", reset_path, expect=202)
    back = lambda: ctl.site.pool()[first.name]["status"] == "AVAILABLE"  # noqa: E731
    wait_until(back, 30, "the host back in the pool")
    busy = ctl.http.put(f"/v2/octavia/amphora-hosts/{amp['compute_id']}/reset",
                        headers={"X-Project-Id": "admin", "X-Roles": "admin"})  # fmt: skip
    assert busy.status_code == 409 and busy.json()["field"] == "amphora_id", busy.text
    scenario.delete_lb(ctl, lb)
    wait_until(lambda: {h["status"] for h in ctl.site.pool().values()} == {"AVAILABLE"}, 30)
