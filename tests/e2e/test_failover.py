"""A frozen amphora host (all its processes stopped and its kernel silent, as a hung machine)
under a steady client loop: BFD takes its next hop out of the ToR's FIB, requests keep
succeeding on the others, the health manager notices the silent heartbeats and the worker
replaces it from the pool's spare hosts; the ECMP set is whole again."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from l3dist.bgp.base import host_prefix
from l3dist.db.models import AmphoraHealth
from l3dist.db.session import Database
from l3dist_lab import fabric, site
from l3dist_lab.traffic import ClientLoop, failures
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

# PostgreSQL only (the database of a control plane with several health managers): the health
# manager's claim and the failover flow on SQLite are tests/db's and test_scale's.
controller = controller_on("postgresql")


def heard(db: Database) -> set[str]:
    with db.session(writer=False) as session:
        return set(session.scalars(select(AmphoraHealth.amphora_id)))


def test_a_frozen_amphora_leaves_the_fib_and_is_replaced(
    controller: Controller, distributor: dict[str, Any], record_property: Any
) -> None:
    ctl = controller
    db = Database(ctl.database_url)
    lb = create_web_lb(ctl, distributor, 3)
    wait_for_ecmp(ctl, lb, 3)
    amps = amphorae_of(ctl, lb["id"])
    wait_until(lambda: {a["id"] for a in amps} <= heard(db), 10, "heartbeats of every amphora")
    victim = amps[0]
    frozen = ctl.site.host_of(victim)
    prefix = host_prefix(lb["vip_address"])
    statuses: set[str] = set()
    with ClientLoop(lb["vip_address"]) as clients:
        time.sleep(1)
        frozen_at = time.time()
        assert site.freeze(frozen) >= 3  # its agent, speaker and HAProxy
        try:
            wait_until(lambda: victim["frontend_ip"] not in fabric.fib_nexthops(prefix), 5,
                       "the frozen amphora out of the FIB")  # fmt: skip
            out_of_fib = time.time()
            wait_until(
                lambda: len(set(fabric.fib_nexthops(prefix)) - {victim["frontend_ip"]}) == 3,
                60,
                "a replacement in the ECMP set",
            )
            whole = time.time()

            def replaced() -> bool:
                shown = ctl.call("GET", lb_path(lb))["loadbalancer"]
                statuses.add(shown["operating_status"])
                ids = {a["id"] for a in amphorae_of(ctl, lb["id"])}
                return victim["id"] not in ids and shown["provisioning_status"] == "ACTIVE"

            wait_until(replaced, 90, "old amphora deleted, load balancer ACTIVE")
            hops = wait_for_ecmp(ctl, lb, 3)
            done = time.time()
            time.sleep(1)
            attempts = clients.stop()
        finally:
            site.thaw(frozen)
    # Read again after the settle time: the router routes to exactly the amphorae there are
    # now (the frozen one's next hop is gone, unless its replacement got the same address).
    now = {a["frontend_ip"] for a in amphorae_of(ctl, lb["id"])}
    assert set(fabric.fib_nexthops(prefix)) == hops == now, (hops, now)
    assert "DEGRADED" in statuses
    assert ctl.call("GET", lb_path(lb))["loadbalancer"]["operating_status"] == "ONLINE"
    record_property("fib_removal_s", round(out_of_fib - frozen_at, 3))
    record_property("whole_again_s", round(whole - frozen_at, 1))
    record_property("failover_done_s", round(done - frozen_at, 1))
    lost = failures(attempts, frozen_at - 1.5, out_of_fib)
    record_property("failed_before_fib_removal", lost)
    print(f"frozen -> out of FIB {out_of_fib - frozen_at:.3f} s, whole again "
          f"{whole - frozen_at:.1f} s, old one gone {done - frozen_at:.1f} s; {lost} requests "
          "failed before the FIB removal")  # fmt: skip
    assert out_of_fib - frozen_at < 2.0, "BFD (100 ms x 3) must act well before the hold timer"
    # (a request in flight to the victim when it froze times out after 1 s)
    assert failures(attempts, 0, frozen_at - 1.5) == 0
    failed_at = [
        round(a.started - whole, 2) for a in attempts if not a.ok and a.started > out_of_fib
    ]
    assert failures(attempts, out_of_fib + 0.5, whole - 0.5) == 0, (
        "requests keep succeeding on the others",
        failed_at,
    )
    # The replacement joining the ECMP group remaps flows in flight (the flow-rescue issue).
    record_property("failed_when_the_replacement_joined", failures(attempts, whole - 0.5, done))
    assert failures(attempts, done) == 0, failed_at
    delete_lb(ctl, lb)
