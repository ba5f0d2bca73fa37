"""A load balancer's life through the REST API only, on the lab backends with real daemons:
created with 3 amphorae, an HTTP listener and two members (one fully populated create);
traffic through the VIP crosses all
amphorae and both members; bad requests are refused and change nothing; deleted without a
trace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from l3dist.bgp.base import host_prefix
from l3dist.db.models import NetIpAllocation, NetPort, WorkerJob
from l3dist.db.session import Database
from l3dist_lab import fabric, hosts, scenario, site
from l3dist_lab import member as lab_member
from l3dist_lab.config import BRIDGE_MACS, LabConfig
from l3dist_lab.traffic import finish_clients, run_clients, start_clients
from tests.e2e.conftest import (
    Controller,
    amphorae_of,
    delete_lb,
    lb_path,
    wait_for_ecmp,
    wait_until,
)


@pytest.fixture(scope="module")
def web_lb(controller: Controller, distributor: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Octavia's fully populated create (issue 19): the load balancer, its listener, pool and
    members in one request, built by one flow (the module's tests prove what it built)."""
    yield scenario.create_populated_lb(controller, distributor["id"], 3, controller.members,
                                       subnets=controller.site.subnets)  # fmt: skip


def test_one_flow_built_the_fully_populated_load_balancer(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    with Database(controller.database_url).session(writer=False) as session:
        flows = list(session.scalars(
            select(WorkerJob.flow).where(WorkerJob.target_id == web_lb["id"])))  # fmt: skip
    assert flows == ["create_load_balancer"]
    pool = controller.call("GET", f"/v2/lbaas/pools/{web_lb['pool']['id']}")["pool"]
    assert pool["provisioning_status"] == "ACTIVE" and len(pool["members"]) == 2, pool


def test_traffic_crosses_every_amphora_and_member(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    ctl, lb = controller, web_lb
    amps = amphorae_of(ctl, lb["id"])
    assert len(amps) == 3
    assert wait_for_ecmp(ctl, lb, 3) == {a["frontend_ip"] for a in amps}
    shown = ctl.call("GET", lb_path(lb))["loadbalancer"]
    assert (shown["provisioning_status"], shown["operating_status"]) == ("ACTIVE", "ONLINE")
    # The peer profile's BFD reached every amphora's speaker: sessions up with the ToR's bfdd.
    wait_until(
        lambda: all(fabric.bfd_peers().get(a["lb_network_ip"]) == "up" for a in amps),
        20,
        "BFD up with every amphora",
    )

    stats_path = f"/v2/lbaas/listeners/{lb['listener']['id']}/stats"
    before = ctl.call("GET", stats_path)["stats"]
    result = run_clients(lb["vip_address"], 300)
    assert result["failures"] == 0, result
    assert set(result["per_amphora"]) == {a["id"] for a in amps}, result
    assert set(result["per_member"]) == {"m1", "m2"}, result

    # Listener statistics: the 300 connections, counted by the amphorae's HAProxy, sent in
    # their heartbeats and summed by the health manager (no request was refused).
    def grown() -> dict[str, int]:
        now = ctl.call("GET", stats_path)["stats"]
        return {name: now[name] - before[name] for name in now}

    wait_until(lambda: grown()["total_connections"] >= 300, 10, "300 connections counted")
    growth = grown()
    assert growth["total_connections"] == 300, growth
    assert growth["bytes_in"] >= 300 * 16 and growth["bytes_out"] >= 300 * 16, growth
    assert growth["request_errors"] == 0, growth

    # Route safety: the controller gave every host the network driver's anycast and floating
    # IP (external) subnets with its amphora (the pools its agent and speaker limit
    # announcements to), and nothing else.
    lab = LabConfig()
    pools = [lab.anycast_v4, lab.floating_v4, lab.anycast_v6, lab.floating_v6]
    for amp in amps:
        given = site.assignment(ctl.site.host_of(amp))
        assert given is not None and given.amphora_id == amp["id"]
        assert given.anycast_prefixes == pools, given

    # Flow rescue on every amphora: the others as peers, the distributor's router MAC in use.
    router_mac = BRIDGE_MACS[LabConfig().frontend.bridge]
    for amp in amps:
        with ctl.site.agent(amp) as client:
            rescue = client.flow_rescue()
        others = sorted(a["frontend_ip"] for a in amps if a["id"] != amp["id"])
        assert (rescue["enabled"], rescue["phase"], sorted(rescue["peers"])) == (
            True,
            "rescuing",
            others,
        ), rescue
        assert rescue["router_macs"] == [router_mac] and router_mac in rescue["router_macs_in_use"]


def test_established_connections_survive_a_configuration_change(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    """Long responses (9 s, data every 100 ms) in flight while a member is added: HAProxy is
    reconfigured and reloaded on every amphora, and every response arrives whole. The clients
    are still running when the load balancer is ACTIVE again, so the reload happened under
    them (an outcome, not a time limit)."""
    ctl, lb = controller, web_lb
    streams = start_clients(lb["vip_address"], 12, "/stream?seconds=9")
    time.sleep(1)
    extra = lab_member.add("m3")
    member = ctl.call(
        "POST",
        f"/v2/lbaas/pools/{lb['pool']['id']}/members",
        {"member": {"address": extra.ip4, "protocol_port": extra.port, "name": "m3"}},
        expect=201,
    )["member"]
    try:
        ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
        in_flight = streams.poll() is None
        result = finish_clients(streams)
        assert in_flight, "the change must land while the responses are in flight"
        assert result["failures"] == 0, result
        assert sum(result["per_amphora"].values()) == 12
    finally:  # the tests after this one expect the two members only
        path = f"/v2/lbaas/pools/{lb['pool']['id']}/members/{member['id']}"
        ctl.call("DELETE", path, expect=204)
        ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
        lab_member.remove("m3")


def test_listener_stop_withdraws_and_start_announces(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    """The spec's lifecycle: no listener running, nothing announced; started again, the VIP is
    announced by every amphora."""
    ctl, lb = controller, web_lb
    listener_path = f"/v2/lbaas/listeners/{lb['listener']['id']}"
    prefix = host_prefix(lb["vip_address"])
    ctl.call("PUT", listener_path, {"listener": {"admin_state_up": False}})
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    wait_until(lambda: fabric.fib_nexthops(prefix) == [], 30, "route withdrawn")
    assert ctl.call("GET", lb_path(lb))["loadbalancer"]["operating_status"] == "OFFLINE"

    ctl.call("PUT", listener_path, {"listener": {"admin_state_up": True}})
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    wait_for_ecmp(ctl, lb, 3)
    assert ctl.call("GET", lb_path(lb))["loadbalancer"]["operating_status"] == "ONLINE"
    assert run_clients(lb["vip_address"], 60)["failures"] == 0


# Written by the health manager from the amphorae's heartbeats, whenever they change.
HEALTH_MANAGER_FIELDS = {"operating_status", "updated_at"}


def _without_health(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in HEALTH_MANAGER_FIELDS} for row in rows]


def snapshot(ctl: Controller, lb: dict[str, Any]) -> dict[str, Any]:
    """What the API and the fabric hold, except what the health manager updates meanwhile."""
    return {
        "lb": ctl.call("GET", lb_path(lb))["loadbalancer"],
        "listeners": _without_health(ctl.call("GET", "/v2/lbaas/listeners")["listeners"]),
        "pools": _without_health(ctl.call("GET", "/v2/lbaas/pools")["pools"]),
        "members": ctl.call("GET", f"/v2/lbaas/pools/{lb['pool']['id']}/members")["members"],
        "amphorae": amphorae_of(ctl, lb["id"]),
        "fib": fabric.fib_nexthops(host_prefix(lb["vip_address"])),
    }


def _bfd_interval_at_the_router(amphorae: list[dict[str, Any]]) -> set[int | None]:
    peers = [fabric.bfd_peer(a["lb_network_ip"]) for a in amphorae]
    return {int(p["remote-receive-interval"]) if p else None for p in peers}


def test_a_peer_profile_change_rolls_to_every_amphora(
    controller: Controller, distributor: dict[str, Any], web_lb: dict[str, Any]
) -> None:
    """The operator slows the ToR peer profile's BFD: the worker restarts each amphora's
    speaker with it, one at a time, while the others carry the traffic. The router's BFD
    session with every amphora then runs at the new interval, the ECMP group is whole again,
    and long responses in flight through the roll all arrive whole."""
    ctl, lb = controller, web_lb
    amps = amphorae_of(ctl, lb["id"])
    [peer] = [
        p for p in ctl.call("GET", "/v2/lbaas/bgppeers")["bgp_peers"] if p["name"] == "tor-v4"
    ]
    default = peer["bfd_receive_interval_ms"]
    assert _bfd_interval_at_the_router(amps) == {default}
    streams = start_clients(lb["vip_address"], 12, "/stream?seconds=16")
    time.sleep(1)
    slower = {"bfd_receive_interval_ms": 300, "bfd_transmit_interval_ms": 300}
    ctl.call("PUT", f"/v2/lbaas/bgppeers/{peer['id']}", {"bgp_peer": slower})
    assert ctl.call("GET", f"/v2/lbaas/distributors/{distributor['id']}")["distributor"][
        "status"] == "PENDING_UPDATE"  # fmt: skip
    started = time.monotonic()
    scenario.wait_for_distributor(ctl, distributor["id"], timeout=120)
    rolled_in = time.monotonic() - started
    in_flight = streams.poll() is None
    wait_until(lambda: _bfd_interval_at_the_router(amps) == {300}, 30, "the new BFD interval")
    assert wait_for_ecmp(ctl, lb, 3) == {a["frontend_ip"] for a in amps}
    result = finish_clients(streams)
    print(f"3 amphorae rolled to the new peer profile in {rolled_in:.1f} s")
    assert in_flight, f"the roll must end while the responses are in flight ({rolled_in:.1f} s)"
    assert result["failures"] == 0, result
    assert sum(result["per_amphora"].values()) == 12
    # Back to the lab's profile (the tests after this one expect it).
    back = {"bfd_receive_interval_ms": default, "bfd_transmit_interval_ms": default}
    ctl.call("PUT", f"/v2/lbaas/bgppeers/{peer['id']}", {"bgp_peer": back})
    scenario.wait_for_distributor(ctl, distributor["id"], timeout=120)
    wait_until(lambda: _bfd_interval_at_the_router(amps) == {default}, 30, "the lab's interval")
    wait_for_ecmp(ctl, lb, 3)


def test_bad_requests_are_refused_and_change_nothing(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    ctl, lb = controller, web_lb
    before = snapshot(ctl, lb)
    other_project = {"X-Project-Id": "other", "X-Roles": "member"}
    refusals = [
        # a pool on another project's listener: that listener does not exist for the caller
        (
            "POST",
            "/v2/lbaas/pools",
            {"pool": {"listener_id": lb["listener"]["id"], "protocol": "HTTP",
                      "lb_algorithm": "ROUND_ROBIN"}},
            other_project,
            404,
            "listener_id",
        ),
        # a second listener on a port already in use
        (
            "POST",
            "/v2/lbaas/listeners",
            {"listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
            None,
            409,
            "protocol_port",
        ),
        ("PUT", lb_path(lb), {"loadbalancer": {"amphora_count": 0}}, None, 400, "amphora_count"),
        (
            "POST",
            f"/v2/lbaas/pools/{lb['pool']['id']}/members",
            {"member": {"address": "10.0.0.300", "protocol_port": 80}},
            None,
            400,
            "address",
        ),
    ]  # fmt: skip
    for method, path, body, headers, status, field in refusals:
        response = ctl.http.request(
            method,
            path,
            json=body,
            headers=headers or {"X-Project-Id": "admin", "X-Roles": "admin"},
        )
        assert response.status_code == status, (path, response.text)
        assert field in response.text, (path, response.text)
    assert snapshot(ctl, lb) == before
    assert run_clients(lb["vip_address"], 60)["failures"] == 0


def test_a_health_monitor_takes_a_dead_member_out(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    """HTTP health checks rendered into every amphora's HAProxy: once m2's server is gone,
    requests are answered by m1 only, none fails."""
    ctl, lb = controller, web_lb
    ctl.call(
        "POST",
        "/v2/lbaas/healthmonitors",
        {"healthmonitor": {"pool_id": lb["pool"]["id"], "type": "HTTP", "delay": 1,
                           "timeout": 1, "max_retries": 1, "max_retries_down": 1,
                           "url_path": "/", "expected_codes": "200"}},
        expect=201,
    )  # fmt: skip
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    assert set(run_clients(lb["vip_address"], 60)["per_member"]) == {"m1", "m2"}
    lab_member.remove("m2")
    time.sleep(3)  # a check every second, one failure marks the server down
    result = run_clients(lb["vip_address"], 120)
    assert result["failures"] == 0, result
    assert set(result["per_member"]) == {"m1"}, result
    # No member left: HAProxy on every amphora says the backend is down, the heartbeats carry
    # it, and the health manager makes the pool ERROR.
    pool_path = f"/v2/lbaas/pools/{lb['pool']['id']}"
    assert ctl.call("GET", pool_path)["pool"]["operating_status"] == "ONLINE"
    lab_member.remove("m1")
    wait_until(
        lambda: ctl.call("GET", pool_path)["pool"]["operating_status"] == "ERROR",
        15,
        "pool ERROR from the amphorae's heartbeats",
    )


def test_delete_leaves_nothing(controller: Controller, web_lb: dict[str, Any]) -> None:
    """Withdrawn at the router; every host reset (no amphora-haproxy namespace, HAProxy or
    speaker left) and back in the pool; no port or address of it left in the IPAM."""
    ctl, lb = controller, web_lb
    amps = amphorae_of(ctl, lb["id"])
    delete_lb(ctl, lb)
    wait_until(lambda: fabric.fib_nexthops(host_prefix(lb["vip_address"])) == [], 30)
    pool = ctl.site.pool()
    assert {h["status"] for h in pool.values()} == {"AVAILABLE"}, pool
    assert {h.name: hosts.leftovers(h) for h in ctl.site.hosts} == {
        h.name: [] for h in ctl.site.hosts
    }
    with Database(ctl.env["L3DIST_DATABASE_URL"]).session() as session:
        left = session.scalars(select(NetPort.device_id)).all()
        addresses = session.scalars(select(NetIpAllocation.ip_address)).all()
    assert not {a["id"] for a in amps} & set(left)
    assert lb["id"] not in left
    assert lb["vip_address"] not in addresses
    assert not {a["frontend_ip"] for a in amps} & set(addresses)
