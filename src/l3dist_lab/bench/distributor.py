"""``l3dist bench distributor``: the combined mode against dedicated distributors, in one run.

Combined (the baseline, the spec's main model): three amphorae, each its own BGP speaker.
Dedicated (spec P2 with ADD-PATH): two distributor amphorae hold the only sessions and announce
three load-balancing amphorae, which run no BGP and answer the distributors' BFD. Measured,
the two modes alternated:

- BGP sessions at the router for 1 and 5 load balancers (combined: 3 amphorae each, every one
  a session per family; dedicated: the load balancers' VIPs through the same two distributors);
- time from registering 1, 100 and 1,000 VIPs (Register VIP on the announcing amphorae, IPv6:
  the lab's IPv4 pool is a /24) until every one has its 3 next hops in the router's kernel FIB
  (combined: each amphora announces one of the three next hops; dedicated: each distributor
  announces all three as ADD-PATH paths);
- failure to FIB removal of the failed amphora's next hop: hard (the amphora frozen) and soft
  (its HAProxy killed; the listener check withdraws), with the combined amphorae's BFD with
  the router (100 ms x 3) against the distributors' BFD to the next hops (50 ms x 3).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from l3dist.bgp.base import host_prefix
from l3dist.contracts.agent_api import BfdPeers
from l3dist.contracts.agent_config import NexthopBfd
from l3dist_lab import amphora, fabric, plumbing
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.bench import goal, summary
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import private_lab
from l3dist_lab.fib import FibWatcher, lacks

GOAL_FAILURE_MS = 300.0  # the bar for a frozen load-balancing amphora
GOAL_THOUSAND_VIPS_S = 60.0  # 1,000 VIPs with all their next hops in the FIB
FAILURE_VIP_INDEX = 250  # an IPv4 VIP of its own for the failure scenarios
MODES = ("combined", "dedicated")


class Cluster:
    """The amphorae of one mode: who announces, and the next hops the router should get."""

    def __init__(self, announcers: list[LabAmphora], balancers: list[LabAmphora]) -> None:
        self.announcers, self.balancers = announcers, balancers

    def register(self, vip_list: list[str], undo: bool = False) -> None:
        """Register VIP (or Unregister VIP) on every announcer, one thread per announcer, the
        whole list in one request each (``PATCH /1.0/distributor/vips``, as the controller
        sends a new distributor amphora every route)."""
        combined = self.announcers == self.balancers

        def one(index: int) -> None:
            speaker = self.announcers[index]
            if combined:  # one next hop each: the next amphora's (its own is Register Amphora)
                hops = [self.balancers[(index + 1) % len(self.balancers)]]
            else:
                hops = self.balancers
            routes = [(vip, lb.frontend_ip(ipaddress.ip_address(vip).version), None)
                      for vip in vip_list for lb in hops]  # fmt: skip
            with speaker.client(timeout=120) as client:
                if undo:
                    client.update_vips(remove=routes)
                else:
                    client.update_vips(add=routes)

        with ThreadPoolExecutor(len(self.announcers)) as pool:
            list(pool.map(one, range(len(self.announcers))))

    def announce_own(self, vip: str) -> None:
        """The failure scenarios' VIP, the way the controller registers a load balancer."""
        version = ipaddress.ip_address(vip).version
        for lb in self.balancers:
            with lb.client() as client:
                client.plug_vip(vip)
        for speaker in self.announcers:
            with speaker.client() as client:
                for lb in self.balancers:
                    if speaker is lb or self.announcers != self.balancers:
                        client.register_amphora(lb.id, vip, lb.frontend_ip(version))


def _wait_fib(prefixes: set[str], hops: int, version: int, timeout: float) -> float:
    """Poll the FIB (every 20 ms) until every prefix has `hops` next hops (0: is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        routes = fabric.kernel_bgp_nexthop_counts(version)
        done = all(routes.get(p, 0) == hops for p in prefixes)
        if done:
            return time.perf_counter()
        if time.monotonic() > deadline:
            missing = sum(1 for p in prefixes if routes.get(p, 0) != hops)
            raise RuntimeError(f"{missing} of {len(prefixes)} routes without {hops} next hops")
        time.sleep(0.02)


def _sessions(amps: list[LabAmphora]) -> int:
    peers = {a.mgmt_ip(v) for a in amps for v in (4, 6)}
    return sum(1 for s in fabric.bgp_sessions() if s.peer in peers and s.state == "Established")


def _established(amps: list[LabAmphora], timeout: float = 30) -> int:
    """Sessions Established at the router once every amphora has one per family (or timeout)."""
    deadline = time.monotonic() + timeout
    while _sessions(amps) < 2 * len(amps) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _sessions(amps)


def _kill_haproxy(amp: LabAmphora) -> None:
    for pid in plumbing.namespace_pids(amp.haproxy_ns):
        if Path(f"/proc/{pid}/comm").read_text().strip() == "haproxy":
            os.kill(pid, signal.SIGKILL)


class DistributorBench:
    def __init__(self, vip_counts: list[int], runs: int, lb_counts: list[int], driver: str) -> None:
        self.vip_counts, self.runs, self.lb_counts, self.driver = (
            vip_counts,
            runs,
            lb_counts,
            driver,
        )
        # Room for 1,000 VIPs x 3 paths per session at the router.
        self.cfg = LabConfig(max_prefixes=10000)

    def run(self) -> dict[str, Any]:
        with private_lab(self.cfg, "l3dist-bench-"):
            clusters = self._build()
            result: dict[str, Any] = {
                "speaker_driver": self.driver,
                "next_hops": 3,
                "distributor_amphorae": 2,
                "nexthop_bfd": "50 ms x 3",
                "router_bfd": f"{self.cfg.bfd_interval_ms} ms x {self.cfg.bfd_multiplier}",
            }
            result["sessions"] = self._sessions(clusters)
            result["register_to_fib_s"] = self._registrations(clusters)
            result["failure_to_fib_ms"] = self._failures(clusters)
        return result

    def _build(self) -> dict[str, Cluster]:
        cfg, driver = self.cfg, self.driver

        def make(kind: str) -> LabAmphora:
            if kind == "combined":
                return amphora.create(cfg, driver)
            if kind == "distributor":
                return amphora.create(cfg, driver, service_type="distributor", add_path=True,
                                      nexthop_bfd=NexthopBfd())  # fmt: skip
            return amphora.create(cfg, speakers=[])

        kinds = ["combined"] * 3 + ["distributor"] * 2 + ["balancer"] * 3
        with ThreadPoolExecutor(4) as pool:
            made = list(pool.map(make, kinds))
        combined, dists, lbs = made[:3], made[3:5], made[5:]
        answer = BfdPeers(peers=[ipaddress.ip_address(d.frontend_ip(v)) for d in dists
                                 for v in (4, 6)])  # fmt: skip
        for lb in lbs:
            with lb.client() as client:
                client.set_bfd_peers(answer)
        return {"combined": Cluster(combined, combined), "dedicated": Cluster(dists, lbs)}

    def _sessions(self, clusters: dict[str, Cluster]) -> dict[str, dict[str, int]]:
        """Established sessions at the router, both families, for each load balancer count."""
        result: dict[str, dict[str, int]] = {mode: {} for mode in MODES}
        extra: list[LabAmphora] = []
        try:
            for count in self.lb_counts:
                more = 3 * count - 3 - len(extra)
                if more > 0:  # combined: every load balancer's amphorae peer
                    extra += amphora.create_many(self.cfg, self.driver, more)
                combined = clusters["combined"].announcers + extra
                result["combined"][str(count)] = _established(combined)
                # dedicated: the load balancers' amphorae run no BGP; the distributors carry
                # every VIP (one per load balancer) over the same sessions
                vip_list = [self.cfg.vip(6, 200 + i) for i in range(count)]
                clusters["dedicated"].register(vip_list)
                _wait_fib({host_prefix(v) for v in vip_list}, 3, 6, 30)
                # one session per family can carry every path: wait for both families' sessions
                result["dedicated"][str(count)] = _established(clusters["dedicated"].announcers)
                clusters["dedicated"].register(vip_list, undo=True)
                _wait_fib({host_prefix(v) for v in vip_list}, 0, 6, 30)
        finally:
            for amp in extra:
                amphora.delete(amp.id)
        return result

    def _registrations(self, clusters: dict[str, Cluster]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for count in self.vip_counts:
            vip_list = [self.cfg.vip(6, 1000 + i) for i in range(count)]
            prefixes = {host_prefix(v) for v in vip_list}
            runs = self.runs if count == 1 else 1
            samples: dict[str, list[float]] = {mode: [] for mode in MODES}
            for _ in range(runs):
                for mode in MODES:  # alternated, not in blocks
                    cluster = clusters[mode]
                    start = time.perf_counter()
                    cluster.register(vip_list)
                    samples[mode].append(_wait_fib(prefixes, 3, 6, 600) - start)
                    cluster.register(vip_list, undo=True)
                    _wait_fib(prefixes, 0, 6, 600)
            entry: dict[str, Any] = {m: summary(samples[m], 3) for m in MODES}
            entry["registrations"] = {"combined": 3 * count, "dedicated": 2 * 3 * count}
            if count == 1000:
                what = "1,000 VIPs with 3 next hops in the FIB, dedicated"
                entry["goal"] = goal(what, entry["dedicated"]["median"], GOAL_THOUSAND_VIPS_S, "s")
            result[str(count)] = entry
        return result

    def _failures(self, clusters: dict[str, Cluster]) -> dict[str, Any]:
        # A VIP per mode: the router must see each mode's next hops alone.
        prefixes = {}
        for offset, mode in enumerate(MODES):
            vip = self.cfg.vip(4, FAILURE_VIP_INDEX + offset)
            clusters[mode].announce_own(vip)
            prefixes[mode] = host_prefix(vip)
        samples: dict[str, dict[str, list[float]]] = {
            kind: {mode: [] for mode in MODES} for kind in ("hard", "soft")
        }
        with FibWatcher() as fib:
            for _ in range(self.runs):
                for kind in ("hard", "soft"):
                    for mode in MODES:  # alternated
                        failed = self._one_failure(fib, clusters[mode], kind, prefixes[mode])
                        samples[kind][mode].append(failed)
        result: dict[str, Any] = {}
        for kind in ("hard", "soft"):
            entry: dict[str, Any] = {m: summary(samples[kind][m]) for m in MODES}
            entry["goal"] = goal(f"{kind} failure to FIB removal, dedicated, median",
                                 entry["dedicated"]["median"], GOAL_FAILURE_MS, "ms")  # fmt: skip
            result[kind] = entry
        result["hard"]["how"] = "the load-balancing amphora frozen (SIGSTOP)"
        result["soft"]["how"] = "its HAProxy killed (the listener check fails)"
        return result

    def _one_failure(self, fib: FibWatcher, cluster: Cluster, kind: str, prefix: str) -> float:
        """One failure of the cluster's first load-balancing amphora: ms from the failure to
        its next hop leaving the FIB (netlink events), then recovered (thawed, or HAProxy
        restarted by the supervisor) and back in the FIB."""
        victim = cluster.balancers[0]
        hops = {lb.frontend_ip4 for lb in cluster.balancers}
        fib.wait_until(prefix, lambda now: set(now) == hops, timeout=60)
        start = time.perf_counter()
        if kind == "hard":
            amphora.signal_processes(victim.id, signal.SIGSTOP)
        else:
            _kill_haproxy(victim)
        try:
            removed = fib.wait_for(prefix, lacks(victim.frontend_ip4), start, timeout=30)
        finally:
            if kind == "hard":
                amphora.signal_processes(victim.id, signal.SIGCONT)
        fib.wait_until(prefix, lambda now: set(now) == hops, timeout=60)
        return (removed - start) * 1000


def run(
    vip_counts: list[int] | None = None,
    runs: int = 5,
    lb_counts: list[int] | None = None,
    driver: str = "bird",
) -> dict[str, Any]:
    return DistributorBench(vip_counts or [1, 100, 1000], runs, lb_counts or [1, 5], driver).run()
