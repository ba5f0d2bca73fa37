"""``l3dist bench failover``: how fast a broken amphora leaves the ECMP set, and comes back.

On the lab, with real FRR (bfdd) as the ToR and BIRD speakers, one VIP announced by 3 amphorae
with BFD (50 ms x 3) and a 4th without BFD (hold timer 3 s: the baseline, measured in the same
run). A steady client loop runs through every event. Each event is timed from its cause to the
route change in the ToR's kernel FIB (netlink events):

- ``hard_bfd``: an amphora frozen (SIGSTOP on all its processes, as a hung VM) until its next hop
  leaves the FIB; ``hard_hold_timer``: the same for the amphora without BFD;
- ``recovery``: the frozen amphora thawed until its next hop is back;
- ``soft``: HAProxy killed on a live amphora until its next hop leaves (the agent's listener
  check withdraws the route; the BGP session stays), and ``soft_recovery`` until the agent's
  supervisor restarted HAProxy and the route is back;
- ``requests_lost``: failed client requests per event (in flight on the amphora when it broke);
- ``whole_again`` (through the controller as on an operator's site: API, worker, health manager,
  ``static`` and ``hosts`` drivers, 5 enrolled hosts): the host of one amphora of a 3-amphora
  load balancer frozen until a spare host's amphora is in the ECMP set (heartbeat timeout,
  failover flow: the replacement assigned, plugged, configured, registered).
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import time
from collections.abc import Callable
from typing import Any

from l3dist.bgp.base import host_prefix
from l3dist_lab import amphora, fabric, member, plumbing, scenario, site, traffic, vips
from l3dist_lab.amphora import LabAmphora, default_peers
from l3dist_lab.bench import goal, summary
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import private_lab
from l3dist_lab.fib import FibWatcher, has, lacks

BFD_INTERVAL_MS = 50
BFD_MULTIPLIER = 3
HEARTBEAT_SETTLE = 2.0  # s for a new amphora's first heartbeats to reach the health manager


class FailoverBench:
    def __init__(self, runs: int, whole_runs: int) -> None:
        self.runs = runs
        self.whole_runs = whole_runs
        self.cfg = LabConfig(bfd_interval_ms=BFD_INTERVAL_MS, bfd_multiplier=BFD_MULTIPLIER)
        self.vip = self.cfg.vip(4)
        self.prefix = host_prefix(self.vip)
        self.ms: dict[str, list[float]] = {}
        self.lost: dict[str, list[int]] = {}

    def run(self) -> dict[str, Any]:
        with private_lab(self.cfg, "l3dist-bench-") as self.plane:
            self._lab_events()
            if self.whole_runs:
                self._whole_again()
        result: dict[str, Any] = {
            "runs": self.runs,
            "unit": "ms",
            "bfd": f"{BFD_INTERVAL_MS} ms x {BFD_MULTIPLIER}",
            "hold_time_s": self.cfg.hold_time,
        }
        for name, samples in self.ms.items():
            result[name] = summary(samples, 1)
        result["hard_bfd_speedup_vs_hold_timer"] = round(
            statistics.median(self.ms["hard_hold_timer"]) / statistics.median(self.ms["hard_bfd"]),
            1,
        )
        result["requests_lost"] = {name: summary([float(n) for n in v], 1)
                                   for name, v in self.lost.items()}  # fmt: skip
        result["goals"] = [goal("a hard failure out of the FIB (BFD)",
                                statistics.median(self.ms["hard_bfd"]), 300.0, "ms")]  # fmt: skip
        if "whole_again" in self.ms:
            restored = statistics.median(self.ms["whole_again"])
            result["goals"].append(
                goal("capacity restored after a hard failure (issue 19)", restored, 2000.0, "ms")
            )
        return result

    def _lab_events(self) -> None:
        with_bfd = amphora.create_many(self.cfg, "bird", 3)
        without_bfd = amphora.create(self.cfg, "bird", speakers=default_peers(self.cfg, bfd=False))
        amps = [*with_bfd, without_bfd]
        with FibWatcher() as fib:
            for amp in amps:
                vips.announce(amp, self.vip)
            fib.wait_until(self.prefix, lambda hops: len(hops) == len(amps), timeout=30)
            self._wait_bfd_up(with_bfd)
            for _ in range(self.runs):
                self._hard(fib, with_bfd[0], "hard_bfd", recovery="recovery")
                self._hard(fib, without_bfd, "hard_hold_timer")
                self._soft(fib, with_bfd[1])
        for amp in amps:
            amphora.delete(amp.id)

    def _whole_again(self) -> None:
        """On an operator's site: 3 amphorae on 3 of 5 hosts; the victim's host frozen as a
        hung machine, timed until a spare host's amphora is in the ECMP set; then thawed (it
        fences itself, the controller resets it and offers it again) before the next run."""
        plane = self.plane
        members = [member.add("m1")]
        plane.start()
        lab_site = site.build(plane, 5, self.cfg)
        for _ in range(self.whole_runs):
            lb = scenario.create_lb(plane, lab_site.distributor["id"], 3, subnets=lab_site.subnets)
            scenario.add_web_service(plane, lb, members)
            scenario.wait_for_ecmp(plane, lb, 3)
            time.sleep(HEARTBEAT_SETTLE)
            victim = scenario.amphorae_of(plane, lb["id"])[0]
            host = lab_site.host_of(victim)
            prefix = host_prefix(lb["vip_address"])
            start = time.monotonic()
            site.freeze(host)
            try:
                while len(set(fabric.fib_nexthops(prefix)) - {victim["frontend_ip"]}) < 3:
                    if time.monotonic() > start + 120:
                        raise RuntimeError("no replacement within 120 s")
                    time.sleep(0.05)
                self.ms.setdefault("whole_again", []).append((time.monotonic() - start) * 1000)
                plane.wait_for(scenario.lb_path(lb), "loadbalancer", "ACTIVE", timeout=120)
            finally:
                site.thaw(host)
            scenario.delete_lb(plane, lb)
            _wait_all_available(lab_site)

    def _wait_bfd_up(self, amps: list[LabAmphora], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not all(fabric.bfd_peers().get(a.mgmt_ip4) == "up" for a in amps):
            if time.monotonic() > deadline:
                raise RuntimeError("BFD sessions with the ToR did not come up")
            time.sleep(0.1)

    def _timed(
        self,
        fib: FibWatcher,
        name: str,
        cause: Callable[[], None],
        condition: Callable[[frozenset[str]], bool],
        timeout: float,
    ) -> float:
        """Cause an event, record how long until the FIB meets condition; when it did."""
        start = time.perf_counter()
        cause()
        seen = fib.wait_for(self.prefix, condition, start, timeout=timeout)
        self.ms.setdefault(name, []).append((seen - start) * 1000)
        return seen

    def _hard(self, fib: FibWatcher, amp: LabAmphora, name: str, recovery: str = "") -> None:
        nexthop = amp.frontend_ip4
        with traffic.ClientLoop(self.vip) as clients:
            time.sleep(0.5)
            started = time.time()
            self._timed(fib, name, lambda: _freeze(amp, signal.SIGSTOP), lacks(nexthop), 15)
            gone = time.time()
            time.sleep(0.3)
            if recovery:
                self._timed(fib, recovery, lambda: _freeze(amp, signal.SIGCONT), has(nexthop), 30)
            else:
                _freeze(amp, signal.SIGCONT)
                fib.wait_until(self.prefix, has(nexthop), timeout=60)
            attempts = clients.stop()
        # In flight on the amphora when it froze: they time out (1 s) and count.
        self.lost.setdefault(name, []).append(traffic.failures(attempts, started - 1.5, gone))
        self._settle(fib, amp)

    def _soft(self, fib: FibWatcher, amp: LabAmphora) -> None:
        nexthop = amp.frontend_ip4
        with traffic.ClientLoop(self.vip) as clients:
            time.sleep(0.5)
            started = time.time()
            withdrawn = self._timed(fib, "soft", lambda: _kill_haproxy(amp), lacks(nexthop), 10)
            gone = time.time()
            back = fib.wait_for(self.prefix, has(nexthop), withdrawn, timeout=30)
            self.ms.setdefault("soft_recovery", []).append((back - withdrawn) * 1000)
            attempts = clients.stop()
        self.lost.setdefault("soft", []).append(traffic.failures(attempts, started - 1.5, gone))
        self._settle(fib, amp)

    def _settle(self, fib: FibWatcher, amp: LabAmphora) -> None:
        """Back to the full set, BFD up again, before the next event."""
        fib.wait_until(self.prefix, has(amp.frontend_ip4), timeout=60)
        time.sleep(1.0)


def _wait_all_available(lab_site: site.Site, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while {h["status"] for h in lab_site.pool().values()} != {"AVAILABLE"}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"hosts not back in the pool: {lab_site.pool()}")
        time.sleep(0.2)


def _freeze(amp: LabAmphora, sig: signal.Signals) -> None:
    amphora.signal_processes(amp.id, sig)


def _kill_haproxy(amp: LabAmphora) -> None:
    for pid in plumbing.namespace_pids(amp.haproxy_ns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run(runs: int = 10, whole_runs: int = 10) -> dict[str, Any]:
    return FailoverBench(runs, whole_runs).run()
