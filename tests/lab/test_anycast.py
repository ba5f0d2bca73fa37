"""Anycast VIP end to end, for each BGP speaker driver: ECMP in the ToR's kernel FIB, sessions in
FRR, client connections through the VIP, unregister/register, agent restart, speaker supervision.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from l3dist.bgp.base import host_prefix
from l3dist.common import netlink
from l3dist_lab import amphora, fabric, traffic, vips
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.config import LabConfig
from l3dist_lab.fib import FibWatcher, has, lacks

from .conftest import VIP4, VIP6, announce_all, create_amphorae

CONNECTIONS = 300


@pytest.fixture(scope="module", params=["bird", "exabgp"])
def cluster(
    request: pytest.FixtureRequest, lab: LabConfig, fib: FibWatcher
) -> Iterator[list[LabAmphora]]:
    amps = create_amphorae(lab, request.param, 3)
    announce_all(amps, fib)
    try:
        yield amps
    finally:
        for amp in amps:
            amphora.delete(amp.id)


def frontend_ips(amps: list[LabAmphora], version: int) -> list[str]:
    return sorted({a.frontend_ip(version) for a in amps}, key=lambda ip: ip.split(":")[-1])


@pytest.mark.parametrize(("vip", "version"), [(VIP4, 4), (VIP6, 6)])
def test_three_amphorae_make_a_three_way_ecmp_route(
    cluster: list[LabAmphora], vip: str, version: int
) -> None:
    hops = fabric.fib_nexthops(host_prefix(vip))
    assert sorted(hops) == sorted(a.frontend_ip(version) for a in cluster)


def test_frr_has_an_established_session_per_amphora_and_family(
    cluster: list[LabAmphora],
) -> None:
    sessions = {s.peer: s for s in fabric.bgp_sessions()}
    for amp in cluster:
        for peer in (amp.mgmt_ip4, amp.mgmt_ip6):
            assert sessions[peer].state == "Established", sessions[peer]
            assert sessions[peer].prefixes_received == 1


def test_agents_report_established_peers_and_routes(cluster: list[LabAmphora]) -> None:
    for amp in cluster:
        status = amp.client().bgp_status()
        assert status["speaker_running"]
        assert {p["peer_id"]: p["established"] for p in status["peers"]} == {
            "tor-v4": True,
            "tor-v6": True,
        }
        assert {(r["prefix"], r["nexthop_ip"]) for r in status["routes"]} == {
            (host_prefix(VIP4), amp.frontend_ip4),
            (host_prefix(VIP6), amp.frontend_ip6),
        }


@pytest.mark.parametrize("vip", [VIP4, VIP6])
def test_client_connections_spread_over_all_three(cluster: list[LabAmphora], vip: str) -> None:
    result = traffic.run_clients(vip, CONNECTIONS)
    assert result["failures"] == 0, result
    assert set(result["per_amphora"]) == {a.id for a in cluster}
    for amp in cluster:
        assert result["per_amphora"][amp.id] >= 0.2 * CONNECTIONS, result


@pytest.mark.parametrize("vip", [VIP4, VIP6])
def test_ecmp_hashing_is_deterministic(cluster: list[LabAmphora], vip: str) -> None:
    """The same 5-tuple reaches the same amphora every time (lab notes, trap 1)."""
    first = traffic.run_clients(vip, 120, source_port_base=40000)
    second = traffic.run_clients(vip, 120, source_port_base=40000)
    assert first["failures"] == 0 and second["failures"] == 0
    assert len(first["by_source_port"]) == 120
    assert first["by_source_port"] == second["by_source_port"]
    assert len(set(first["by_source_port"].values())) == 3


@pytest.mark.parametrize(("vip", "version"), [(VIP4, 4), (VIP6, 6)])
def test_unregister_removes_the_next_hop_and_register_brings_it_back(
    cluster: list[LabAmphora], fib: FibWatcher, vip: str, version: int
) -> None:
    leaving = cluster[1]
    nexthop = leaving.frontend_ip(version)
    prefix = host_prefix(vip)

    vips.withdraw(leaving, vip)
    fib.wait_until(prefix, lacks(nexthop))
    assert len(fabric.fib_nexthops(prefix)) == 2
    result = traffic.run_clients(vip, CONNECTIONS)
    assert result["failures"] == 0, result
    assert leaving.id not in result["per_amphora"]
    assert sum(result["per_amphora"].values()) == CONNECTIONS
    # The spec: after the withdraw, the VIP leaves the amphora's loopback.
    lo = netlink.addresses(leaving.haproxy_ns, "lo")
    assert not any(a.startswith(f"{vip}/") for a in lo)

    vips.announce(leaving, vip)
    fib.wait_until(prefix, has(nexthop))
    assert len(fabric.fib_nexthops(prefix)) == 3


def test_agent_restart_announces_again_without_a_register_call(
    cluster: list[LabAmphora], fib: FibWatcher
) -> None:
    amp = cluster[2]
    amphora.stop_agent(amp)
    fib.wait_until(host_prefix(VIP4), lacks(amp.frontend_ip4))
    fib.wait_until(host_prefix(VIP6), lacks(amp.frontend_ip6))

    amphora.start_agent(amp)
    fib.wait_until(host_prefix(VIP4), has(amp.frontend_ip4), timeout=20)
    fib.wait_until(host_prefix(VIP6), has(amp.frontend_ip6), timeout=20)
    assert len(amp.client().list_amphorae()) == 2


def test_a_killed_speaker_is_restarted_and_announces_again(
    cluster: list[LabAmphora], fib: FibWatcher
) -> None:
    amp = cluster[0]
    pid_file = amp.state_dir / "bgp" / f"{amp.speaker_driver}.pid"
    pid = int(pid_file.read_text())
    killed_at = time.perf_counter()
    os.killpg(pid, signal.SIGKILL)
    fib.wait_for(host_prefix(VIP4), lacks(amp.frontend_ip4), since=killed_at)
    fib.wait_until(host_prefix(VIP4), has(amp.frontend_ip4), timeout=20)
    fib.wait_until(host_prefix(VIP6), has(amp.frontend_ip6), timeout=20)
    status = amp.client().bgp_status()
    assert status["restarts"][amp.speaker_driver] >= 1
    assert int(pid_file.read_text()) != pid


def test_bfd_runs_with_the_tor_when_the_speaker_has_it(cluster: list[LabAmphora]) -> None:
    """BIRD runs BFD with the ToR's bfdd (100 ms x 3); ExaBGP has none, and says so."""
    bird = cluster[0].speaker_driver == "bird"
    deadline = time.monotonic() + 20
    while bird and time.monotonic() < deadline:
        tor = fabric.bfd_peers()
        if all(tor.get(ip) == "up" for a in cluster for ip in (a.mgmt_ip4, a.mgmt_ip6)):
            break
        time.sleep(0.2)
    tor = fabric.bfd_peers()
    for amp in cluster:
        states = {p["peer_id"]: p["bfd_state"] for p in amp.client().bgp_status()["peers"]}
        if bird:
            assert tor.get(amp.mgmt_ip4) == "up" and tor.get(amp.mgmt_ip6) == "up", tor
            assert states == {"tor-v4": "Up", "tor-v6": "Up"}
        else:
            assert states == {"tor-v4": None, "tor-v6": None}
            assert tor.get(amp.mgmt_ip4) != "up"
