"""Scaling an ACTIVE_ACTIVE load balancer out and in through the REST API while a client loop of
new connections runs through the VIP: the ToR's ECMP set follows the amphora count; no request
fails during the scale-out (flow rescue), the scale-in (drained first) or after either change.
Drain Amphora through the API: long-lived connections survive it, the amphora is DRAINING
until they end, then removed."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest

from l3dist.bgp.base import host_prefix
from l3dist_lab import fabric
from l3dist_lab.traffic import Attempt, ClientLoop, failures, finish_clients, start_long_lived
from tests.e2e.conftest import (
    Controller,
    amphorae_of,
    controller_on,
    create_web_lb,
    delete_lb,
    lb_path,
    wait_for_ecmp,
    wait_until,
)

SETTLE = 2.0  # seconds of traffic after each change has completed
# SQLite only: the same flows on PostgreSQL run in test_lifecycle, test_worker_crash and
# test_failover; what this module adds is the data path under scale, which is no database's.
controller = controller_on("sqlite")


def scale(ctl: Controller, lb: dict[str, Any], count: int) -> tuple[float, float]:
    """Change the amphora count; returns (asked, completed): ACTIVE and the FIB converged."""
    asked = time.time()
    ctl.call("PUT", lb_path(lb), {"loadbalancer": {"amphora_count": count}})
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    wait_for_ecmp(ctl, lb, count)
    return asked, time.time()


@pytest.mark.parametrize(("ip_version", "scale_in_to"), [(4, 2), (6, 3)])
def test_scale_out_and_in_under_traffic(
    controller: Controller,
    distributor: dict[str, Any],
    record_property: Any,
    ip_version: int,
    scale_in_to: int,
) -> None:
    """3 -> 4 -> scale_in_to amphorae (IPv4: two drained at once, IPv6: one) under a client loop
    of new connections and 300 long-lived ones: none breaks."""
    ctl = controller
    lb = create_web_lb(ctl, distributor, 3, ip_version)
    wait_for_ecmp(ctl, lb, 3)
    first = {a["id"] for a in amphorae_of(ctl, lb["id"])}

    # 300 long-lived connections through both changes: the scale-in drains until they end
    long_lived = start_long_lived(lb["vip_address"], 300, 12)
    with ClientLoop(lb["vip_address"]) as clients:
        time.sleep(SETTLE)
        out_asked, out_done = scale(ctl, lb, 4)
        after_out = {a["id"] for a in amphorae_of(ctl, lb["id"])}
        time.sleep(SETTLE)
        in_asked, in_done = scale(ctl, lb, scale_in_to)
        time.sleep(SETTLE)
        attempts: list[Attempt] = clients.stop()
    held = finish_clients(long_lived)
    record_property("long_lived_broken", held["broken"])
    assert held["broken"] == 0, held

    assert len(after_out) == 4 and first < after_out
    remaining = {a["id"] for a in amphorae_of(ctl, lb["id"])}
    assert len(remaining) == scale_in_to and remaining <= first, "scale-in removes the newest"
    shown = ctl.call("GET", lb_path(lb))["loadbalancer"]
    assert (shown["amphora_count"], shown["operating_status"]) == (scale_in_to, "ONLINE")

    during_out = failures(attempts, out_asked, out_done)
    during_in = failures(attempts, in_asked, in_done)
    record_property("failed_during_scale_out", during_out)
    record_property("failed_during_scale_in", during_in)
    print(f"IPv{ip_version} requests: {len(attempts)}; failed during 3->4: {during_out}, "
          f"during 4->{scale_in_to}: {during_in}")  # fmt: skip
    assert failures(attempts, 0, out_asked) == 0
    # Flow rescue: every amphora had the new one in its rules before it was announced, so the
    # flows the router moved to it were copied to their owners.
    assert during_out == 0, "connections broken by the scale-out"
    assert failures(attempts, out_done, in_asked) == 0, "failures after scale-out completed"
    # Drained first: their routes withdrawn, their connections finished, then removed.
    assert during_in == 0, "connections broken by the scale-in"
    assert failures(attempts, in_done) == 0, "failures after scale-in completed"
    answered = {a.detail for a in attempts if a.ok and a.started > in_done}
    assert answered == remaining
    assert {a.detail for a in attempts if a.ok and out_done < a.started < in_asked} == after_out

    delete_lb(ctl, lb)


@pytest.mark.parametrize("ip_version", [4, 6])
def test_amphora_failover_replaces_first(
    controller: Controller, distributor: dict[str, Any], record_property: Any, ip_version: int
) -> None:
    """Failover of one live amphora (planned): the replacement is built and registered before the
    old one is drained, unregistered and deleted; the ECMP set keeps its size, with the new
    front end in it; neither new connections nor 300 long-lived ones break."""
    ctl = controller
    lb = create_web_lb(ctl, distributor, 3, ip_version)
    wait_for_ecmp(ctl, lb, 3)
    before = {a["id"]: a for a in amphorae_of(ctl, lb["id"])}
    old = next(iter(before.values()))
    long_lived = start_long_lived(lb["vip_address"], 300, 8)
    with ClientLoop(lb["vip_address"]) as clients:
        time.sleep(1)
        asked = time.time()
        ctl.call("PUT", f"/v2/octavia/amphorae/{old['id']}/failover", expect=202)
        ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
        hops = wait_for_ecmp(ctl, lb, 3)
        done = time.time()
        time.sleep(SETTLE)
        attempts = clients.stop()
    after = {a["id"]: a for a in amphorae_of(ctl, lb["id"])}
    assert old["id"] not in after and len(set(after) - set(before)) == 1
    # Read again after the settle time: the router routes to exactly the amphorae there are
    # now (the old next hop is gone, unless the replacement was given the same address).
    now_hops = set(fabric.fib_nexthops(host_prefix(lb["vip_address"])))
    assert now_hops == hops == {a["frontend_ip"] for a in after.values()}, (now_hops, after)
    held = finish_clients(long_lived)
    record_property("failed_during_failover", failures(attempts, asked, done))
    record_property("long_lived_broken_by_failover", held["broken"])
    assert failures(attempts, 0, asked) == 0
    assert failures(attempts, asked, done) == 0, "new connections broken by the failover"
    assert held["broken"] == 0, held
    assert failures(attempts, done) == 0
    assert {a.detail for a in attempts if a.ok and a.started > done} == set(after)
    delete_lb(ctl, lb)


@pytest.mark.parametrize("ip_version", [4, 6])
def test_drain_action_keeps_long_lived_connections(
    controller: Controller, distributor: dict[str, Any], record_property: Any, ip_version: int
) -> None:
    """PUT /v2/octavia/amphorae/{id}/drain on the middle of 3 amphorae while 300 long-lived
    connections (a request every 150 ms each) run: its route goes at once, it stays DRAINING
    while it still has connections (the peers' flow rescue delivers their packets), and is
    removed once they ended; none broke; the load balancer has 2 amphorae."""
    ctl = controller
    lb = create_web_lb(ctl, distributor, 3, ip_version)
    wait_for_ecmp(ctl, lb, 3)
    amphorae = sorted(
        amphorae_of(ctl, lb["id"]), key=lambda a: ipaddress.ip_address(a["frontend_ip"])
    )
    assert {ipaddress.ip_address(a["frontend_ip"]).version for a in amphorae} == {ip_version}
    drained = amphorae[1]
    assert drained["operating_status"] == "ONLINE"
    hold = 8.0
    clients = start_long_lived(lb["vip_address"], 300, hold)
    opened = time.time()
    time.sleep(2)
    ctl.call("PUT", f"/v2/octavia/amphorae/{drained['id']}/drain", expect=202)
    others = {a["frontend_ip"] for a in amphorae} - {drained["frontend_ip"]}
    prefix = host_prefix(lb["vip_address"])
    wait_until(lambda: set(fabric.fib_nexthops(prefix)) == others, 10, "route withdrawn")
    shown = ctl.call("GET", f"/v2/octavia/amphorae/{drained['id']}")["amphora"]
    assert shown["operating_status"] == "DRAINING" and shown["drain_started_at"]
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE", timeout=60)
    removed = time.time()
    assert wait_for_ecmp(ctl, lb, 2) == others
    result = finish_clients(clients)
    record_property("broken_by_drain", result["broken"])
    print(f"IPv{ip_version} drain: {result['broken']} of 300 broken; removed "
          f"{removed - opened:.1f} s after the connections opened (held {hold} s)")  # fmt: skip
    assert result["broken"] == 0, result
    assert removed - opened >= hold - 0.5, "removed before its connections ended"
    remaining = {a["id"] for a in amphorae_of(ctl, lb["id"])}
    assert remaining == {a["id"] for a in amphorae} - {drained["id"]}
    shown_lb = ctl.call("GET", lb_path(lb))["loadbalancer"]
    assert (shown_lb["amphora_count"], shown_lb["operating_status"]) == (2, "ONLINE")
    delete_lb(ctl, lb)
