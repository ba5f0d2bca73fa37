"""Scaling an ACTIVE_ACTIVE load balancer out and in through the REST API while a client loop of
new connections runs through the VIP: the ToR's ECMP set follows the amphora count; no request
fails during the scale-out (flow rescue) or after either change (failures during the scale-in
are reported: draining takes them to zero)."""

from __future__ import annotations

import time
from typing import Any

from l3dist.lab.traffic import Attempt, ClientLoop, failures
from tests.e2e.conftest import (
    Controller,
    amphorae_of,
    create_web_lb,
    delete_lb,
    lb_path,
    wait_for_ecmp,
)

SETTLE = 2.0  # seconds of traffic after each change has completed


def scale(ctl: Controller, lb: dict[str, Any], count: int) -> tuple[float, float]:
    """Change the amphora count; returns (asked, completed): ACTIVE and the FIB converged."""
    asked = time.time()
    ctl.call("PUT", lb_path(lb), {"loadbalancer": {"amphora_count": count}})
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    wait_for_ecmp(ctl, lb, count)
    return asked, time.time()


def test_scale_out_and_in_under_traffic(
    controller: Controller, distributor: dict[str, Any], record_property: Any
) -> None:
    ctl = controller
    lb = create_web_lb(ctl, distributor, 3)
    wait_for_ecmp(ctl, lb, 3)
    first = {a["id"] for a in amphorae_of(ctl, lb["id"])}

    with ClientLoop(lb["vip_address"]) as clients:
        time.sleep(SETTLE)
        out_asked, out_done = scale(ctl, lb, 4)
        after_out = {a["id"] for a in amphorae_of(ctl, lb["id"])}
        time.sleep(SETTLE)
        in_asked, in_done = scale(ctl, lb, 2)
        time.sleep(SETTLE)
        attempts: list[Attempt] = clients.stop()

    assert len(after_out) == 4 and first < after_out
    remaining = {a["id"] for a in amphorae_of(ctl, lb["id"])}
    assert len(remaining) == 2 and remaining <= first, "scale-in removes the newest first"
    shown = ctl.call("GET", lb_path(lb))["loadbalancer"]
    assert (shown["amphora_count"], shown["operating_status"]) == (2, "ONLINE")

    during_out = failures(attempts, out_asked, out_done)
    during_in = failures(attempts, in_asked, in_done)
    record_property("failed_during_scale_out", during_out)
    record_property("failed_during_scale_in", during_in)
    print(f"requests: {len(attempts)}; failed during 3->4: {during_out}, during 4->2: {during_in}")
    assert failures(attempts, 0, out_asked) == 0
    # Flow rescue: every amphora had the new one in its rules before it was announced, so the
    # flows the router moved to it were copied to their owners.
    assert during_out == 0, "connections broken by the scale-out"
    assert failures(attempts, out_done, in_asked) == 0, "failures after scale-out completed"
    assert failures(attempts, in_done) == 0, "failures after scale-in completed"
    answered = {a.detail for a in attempts if a.ok and a.started > in_done}
    assert answered == remaining
    assert {a.detail for a in attempts if a.ok and out_done < a.started < in_asked} == after_out

    delete_lb(ctl, lb)


def test_amphora_failover_replaces_first(
    controller: Controller, distributor: dict[str, Any], record_property: Any
) -> None:
    """Failover of one live amphora: the replacement is built and registered before the old one
    is unregistered and deleted; the ECMP set keeps its size, with the new front end in it."""
    ctl = controller
    lb = create_web_lb(ctl, distributor, 3)
    wait_for_ecmp(ctl, lb, 3)
    before = {a["id"]: a for a in amphorae_of(ctl, lb["id"])}
    old = next(iter(before.values()))
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
    assert old["frontend_ip"] not in hops or old["frontend_ip"] in {
        a["frontend_ip"] for a in after.values()
    }, "an address may be reused by the replacement"
    record_property("failed_during_failover", failures(attempts, asked, done))
    assert failures(attempts, 0, asked) == 0
    assert failures(attempts, done) == 0
    assert {a.detail for a in attempts if a.ok and a.started > done} == set(after)
    delete_lb(ctl, lb)
