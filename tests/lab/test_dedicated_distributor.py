"""Dedicated distributor amphorae (spec P2, with ADD-PATH), on real daemons.

Two distributor amphorae hold the only BGP sessions with the ToR and announce, with ADD-PATH,
every load-balancing amphora's front end as a path of the VIP; three load-balancing amphorae
run HAProxy and no BGP at all, and answer the distributors' BFD on their front end. The ToR
builds a 3-way ECMP route from two sessions; a frozen or failing load-balancing amphora leaves
the FIB through the distributors' BFD; a frozen distributor costs nothing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from l3dist.bgp.base import host_prefix
from l3dist.contracts.agent_api import BfdPeers
from l3dist.contracts.agent_config import NexthopBfd
from l3dist_lab import amphora, fabric, plumbing, traffic
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.config import LabConfig
from l3dist_lab.fib import FibWatcher, lacks

from .conftest import VIP4, VIP6

VIPS = ((VIP4, 4), (VIP6, 6))


@dataclass
class Dedicated:
    distributors: list[LabAmphora]
    balancers: list[LabAmphora]

    def register(self, lb: LabAmphora) -> None:
        for dist in self.distributors:
            with dist.client() as client:
                for vip, version in VIPS:
                    client.register_amphora(lb.id, vip, lb.frontend_ip(version))

    def unregister(self, lb: LabAmphora) -> None:
        for dist in self.distributors:
            with dist.client() as client:
                for vip, version in VIPS:
                    client.unregister_amphora(lb.id, vip, lb.frontend_ip(version))

    def nexthops(self, version: int) -> set[str]:
        return {lb.frontend_ip(version) for lb in self.balancers}


def wait_for_all(fib: FibWatcher, cluster: Dedicated) -> None:
    for vip, version in VIPS:
        wanted = cluster.nexthops(version)
        fib.wait_until(host_prefix(vip), lambda hops, w=wanted: hops == w, timeout=30)


@pytest.fixture(scope="module", params=["bird", "exabgp"])
def cluster(request: pytest.FixtureRequest, lab: LabConfig, fib: FibWatcher) -> Iterator[Dedicated]:
    made: list[LabAmphora] = []
    driver = request.param

    def distributor(_: int) -> LabAmphora:
        return amphora.create(
            lab, driver, service_type="distributor", add_path=True, nexthop_bfd=NexthopBfd()
        )

    def balancer(_: int) -> LabAmphora:
        return amphora.create(lab, speakers=[])  # no BGP: the driver does not matter

    try:
        with ThreadPoolExecutor(5) as pool:
            dists = pool.map(distributor, range(2))
            lbs = pool.map(balancer, range(3))
            made += [*dists, *lbs]
        dedicated = Dedicated(made[:2], made[2:])
        answer = BfdPeers(peers=[d.frontend_ip(v) for d in dedicated.distributors for v in (4, 6)])
        for lb in dedicated.balancers:
            with lb.client() as client:
                for vip, _ in VIPS:
                    client.plug_vip(vip)
                client.set_bfd_peers(answer)
            dedicated.register(lb)
        wait_for_all(fib, dedicated)
        yield dedicated
    finally:
        for amp in made:
            amphora.delete(amp.id)


@pytest.mark.parametrize(("vip", "version"), VIPS)
def test_two_sessions_make_a_three_way_route(cluster: Dedicated, vip: str, version: int) -> None:
    assert set(fabric.fib_nexthops(host_prefix(vip))) == cluster.nexthops(version)
    sessions = {s.peer: s for s in fabric.bgp_sessions()}
    for dist in cluster.distributors:
        peer = dist.mgmt_ip(version)
        assert sessions[peer].state == "Established", sessions[peer]
        assert sessions[peer].prefixes_received == 3  # one VIP, three paths
    for lb in cluster.balancers:
        assert lb.mgmt_ip(version) not in sessions  # tenants' amphorae never peer


def test_only_distributors_speak_bgp_and_add_path_is_reported(cluster: Dedicated) -> None:
    for dist in cluster.distributors:
        with dist.client() as client:
            status = client.bgp_status()
            assert {p["peer_id"]: p["add_path"] for p in status["peers"]} == {
                "tor-v4": True,
                "tor-v6": True,
            }
            assert len(status["routes"]) == 6  # 2 VIPs x 3 next hops
            assert client.info()["service_type"] == "distributor"
    for lb in cluster.balancers:
        with lb.client() as client:
            assert client.bgp_status()["peers"] == []
            sessions = client.bfd_status()["sessions"]
            assert set(sessions) == {d.frontend_ip(v) for d in cluster.distributors for v in (4, 6)}
            assert set(sessions.values()) == {"Up"}


@pytest.mark.parametrize("vip", [VIP4, VIP6])
def test_traffic_reaches_all_three(cluster: Dedicated, vip: str) -> None:
    result = traffic.run_clients(vip, 150)
    assert result["failures"] == 0, result
    assert set(result["per_amphora"]) == {lb.id for lb in cluster.balancers}


def test_unregister_leaves_two_next_hops(cluster: Dedicated, fib: FibWatcher) -> None:
    gone = cluster.balancers[2]
    cluster.unregister(gone)
    try:
        for vip, version in VIPS:
            rest = cluster.nexthops(version) - {gone.frontend_ip(version)}
            fib.wait_until(host_prefix(vip), lambda hops, r=rest: hops == r, timeout=10)
    finally:
        cluster.register(gone)
    wait_for_all(fib, cluster)


def test_a_frozen_load_balancer_leaves_the_fib(cluster: Dedicated, fib: FibWatcher) -> None:
    frozen = cluster.balancers[0]
    assert amphora.signal_processes(frozen.id, signal.SIGSTOP) > 0
    try:
        for vip, version in VIPS:
            fib.wait_until(host_prefix(vip), lacks(frozen.frontend_ip(version)), timeout=5)
    finally:
        amphora.signal_processes(frozen.id, signal.SIGCONT)
    wait_for_all(fib, cluster)


def test_a_load_balancer_whose_haproxy_died_is_withdrawn(
    cluster: Dedicated, fib: FibWatcher
) -> None:
    """The listener check fails, the amphora stops answering BFD, the distributors withdraw
    it; the supervisor restarts HAProxy and it is back."""
    lb = cluster.balancers[1]
    pids = [
        pid
        for pid in plumbing.namespace_pids(lb.haproxy_ns)
        if Path(f"/proc/{pid}/comm").read_text().strip() == "haproxy"  # not its BFD's BIRD
    ]
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    fib.wait_until(host_prefix(VIP4), lacks(lb.frontend_ip4), timeout=5)
    wait_for_all(fib, cluster)


def test_a_frozen_distributor_keeps_the_route_and_every_request(
    cluster: Dedicated, fib: FibWatcher
) -> None:
    frozen = cluster.distributors[0]
    with traffic.ClientLoop(VIP4) as clients:
        time.sleep(0.5)
        assert amphora.signal_processes(frozen.id, signal.SIGSTOP) > 0
        try:
            fabric_peer = frozen.mgmt_ip4
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                sessions = {s.peer: s.state for s in fabric.bgp_sessions()}
                if sessions.get(fabric_peer) != "Established":
                    break
                time.sleep(0.1)
            assert sessions.get(fabric_peer) != "Established", "the ToR never noticed"
            time.sleep(1)
            assert set(fabric.fib_nexthops(host_prefix(VIP4))) == cluster.nexthops(4)
        finally:
            amphora.signal_processes(frozen.id, signal.SIGCONT)
        attempts = clients.stop()
    assert len(attempts) > 100
    assert traffic.failures(attempts, 0) == 0
    wait_for_all(fib, cluster)


def test_a_router_without_add_path_gets_one_next_hop_per_distributor(
    cluster: Dedicated, fib: FibWatcher
) -> None:
    """The fallback: a peer that does not take ADD-PATH gets one next hop per VIP from each
    distributor (the spec's model), and the distributors say so."""
    fabric.set_add_path_rx(4, False)
    try:
        fib.wait_until(host_prefix(VIP4), lambda hops: 1 <= len(hops) <= 2, timeout=15)
        for dist in cluster.distributors:
            with dist.client() as client:
                deadline = time.monotonic() + 30  # a wait, not a target: the reset sessions
                while True:
                    peers = {p["peer_id"]: p for p in client.bgp_status()["peers"]}
                    up = all(peers[name]["established"] for name in ("tor-v4", "tor-v6"))
                    if up or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                assert peers["tor-v4"]["add_path"] is False
                assert peers["tor-v6"]["add_path"] is True
        assert set(fabric.fib_nexthops(host_prefix(VIP4))) <= cluster.nexthops(4)
    finally:
        fabric.set_add_path_rx(4, True)
    wait_for_all(fib, cluster)
