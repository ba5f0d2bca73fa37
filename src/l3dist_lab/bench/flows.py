"""``l3dist bench flows``: what flow rescue saves when the ECMP set changes, and what it costs.

On the lab (real FRR ToR, 4 BIRD amphorae with BFD), IPv4 or IPv6 (``--ip-version``), for each
scenario, once with rescue off and once on (the baseline is measured in the same run),
long-lived connections through a VIP (a request every 150 ms each) live through one change made
2 s into their life:

- ``scale_out``: 3 amphorae announce the VIP, a 4th is added;
- ``drain_first`` / ``drain_middle`` / ``drain_last``: 4 announce it, the first, a middle or
  the last next hop (by address: the order of the router's ECMP group) is drained;
- ``dead``: 4 announce it, one dies (nothing enters its namespace, its processes frozen); its
  own connections break (with rescue on, each with a reset: ``last_break_s`` after the death),
  the others must not (``broken_not_own``).

Reported per scenario and mode: connections broken; flows the router moved (rescue off: those
that broke; on: the flows the amphorae rescued); copies per rescued packet (over the run, and in
the steady state of its last seconds, with owner learning).

Costs (``cost``): the round trip added to rescued flows (``rtt``: a light load of 30
connections, so that the single lab host is not the bottleneck, through a scale-out with rescue
on: p50/p99 after the change against before it, and the same with rescue off as the control);
and the CPU that rescue's conntrack and rules take (``cpu``: the host's busy share with the
full load and no change, rescue on against off).
"""

from __future__ import annotations

import ipaddress
import signal
import statistics
import time
from collections.abc import Callable
from typing import Any

from l3dist.bgp.base import host_prefix
from l3dist_lab import amphora, vips
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import private_lab
from l3dist_lab.fib import FibWatcher, has, lacks
from l3dist_lab.traffic import finish_clients, start_long_lived

CONNECTIONS = 300
LIGHT_LOAD = 30  # connections for the round-trip measure
HOLD_SECONDS = 9.0
CHANGE_AFTER = 2.0
STEADY_WINDOW = 2.0  # seconds, near the end of the connections' life
SCENARIOS = ("scale_out", "drain_first", "drain_middle", "drain_last", "dead")


class FlowsBench:
    def __init__(
        self,
        connections: int = CONNECTIONS,
        ip_version: int = 4,
        scenarios: tuple[str, ...] = SCENARIOS,
    ) -> None:
        self.cfg = LabConfig()
        self.connections = connections
        self.ip_version = ip_version
        self.scenarios = scenarios
        self.vip_index = 100

    def run(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "connections": self.connections,
            "ip_version": self.ip_version,
            "hold_seconds": HOLD_SECONDS,
            "request_interval_ms": 150,
            "bfd": f"{self.cfg.bfd_interval_ms} ms x {self.cfg.bfd_multiplier}",
            "scenarios": list(self.scenarios),
        }
        with private_lab(self.cfg, "l3dist-bench-"):
            cluster = amphora.create_many(self.cfg, "bird", 4)
            try:
                with FibWatcher() as fib:
                    for scenario in self.scenarios:
                        result[scenario] = {
                            "rescue_off": self._scenario(cluster, fib, scenario, rescue=False),
                            "rescue_on": self._scenario(cluster, fib, scenario, rescue=True),
                        }
                    result["cost"] = self._cost(cluster, fib)
            finally:
                for amp in cluster:
                    amphora.delete(amp.id)
        return result

    def _cost(self, cluster: list[LabAmphora], fib: FibWatcher) -> dict[str, Any]:
        rtt = {
            mode: self._scenario(cluster, fib, "scale_out", rescue, LIGHT_LOAD)["rtt"]
            for mode, rescue in (("rescue_off", False), ("rescue_on", True))
        }
        cpu = {
            mode: self._scenario(cluster, fib, "none", rescue)["cpu_busy_share"]
            for mode, rescue in (("rescue_off", False), ("rescue_on", True))
        }
        return {
            "rtt": {"connections": LIGHT_LOAD, **rtt},
            "cpu": {
                "connections": self.connections,
                **cpu,
                "on_vs_off": round(cpu["rescue_on"] / cpu["rescue_off"], 2),
            },
        }

    def _scenario(
        self,
        cluster: list[LabAmphora],
        fib: FibWatcher,
        scenario: str,
        rescue: bool,
        connections: int | None = None,
    ) -> dict[str, Any]:
        self.vip_index += 1
        version = self.ip_version
        vip = self.cfg.vip(version, self.vip_index)
        prefix = host_prefix(vip)
        for amp in cluster:
            with amp.client() as client:
                if rescue:
                    peers = [o.frontend_ip(version) for o in cluster if o.id != amp.id]
                    client.set_flow_rescue(peers)
                else:
                    client.clear_flow_rescue()
        by_address = sorted(cluster, key=lambda a: ipaddress.ip_address(a.frontend_ip(version)))
        announced = cluster[:3] if scenario == "scale_out" else cluster
        target = {
            "none": cluster[0],
            "scale_out": cluster[3],
            "drain_first": by_address[0],
            "drain_middle": by_address[1],
            "drain_last": by_address[3],
            "dead": by_address[2],
        }[scenario]
        change, undo = _change(scenario, target, vip, version, fib)
        # a dead amphora's agent does not answer: the others' counters tell
        counted = [a for a in cluster if not (scenario == "dead" and a is target)]
        try:
            for amp in announced:
                vips.announce(amp, vip)
            fib.wait_until(prefix, lambda hops: len(hops) == len(announced), timeout=30)
            count = connections or self.connections
            clients = start_long_lived(vip, count, HOLD_SECONDS, with_rtts=True)
            started = time.monotonic()
            time.sleep(CHANGE_AFTER)
            cpu: list[tuple[float, float]] = []
            counts, changed_at = [_counts(counted)], time.time()
            change()
            time.sleep(max(0.0, started + HOLD_SECONDS - STEADY_WINDOW - 0.5 - time.monotonic()))
            counts.append(_counts(counted))
            cpu.append(_cpu())
            time.sleep(STEADY_WINDOW)
            cpu.append(_cpu())
            counts.append(_counts(counted))
            outcome = finish_clients(clients)
        finally:
            undo()
            for amp in cluster:
                vips.withdraw_if_registered(amp, vip)
        report = _report(outcome, scenario, target, rescue, changed_at, counts)
        report["cpu_busy_share"] = _busy_share(cpu[0], cpu[1])  # the steady window
        return report


def _change(
    scenario: str, target: LabAmphora, vip: str, version: int, fib: FibWatcher
) -> tuple[Callable[[], None], Callable[[], None]]:
    """The change a scenario makes (done once the FIB shows it), and how to undo it."""
    prefix = host_prefix(vip)
    next_hop = target.frontend_ip(version)
    if scenario == "none":
        return (lambda: None), (lambda: None)
    if scenario == "scale_out":

        def add() -> None:
            vips.announce(target, vip)
            fib.wait_until(prefix, has(next_hop), timeout=30)

        return add, lambda: None
    if scenario == "dead":

        def die() -> None:
            amphora.cut_off(target.id)  # first: its kernel would still ACK for frozen processes
            amphora.signal_processes(target.id, signal.SIGSTOP)
            fib.wait_until(prefix, lacks(next_hop), timeout=30)

        def revive() -> None:
            amphora.cut_off(target.id, cut=False)
            amphora.signal_processes(target.id, signal.SIGCONT)

        return die, revive

    def drain() -> None:
        with target.client() as client:
            client.drain_amphora(target.id, vip, next_hop)
        fib.wait_until(prefix, lacks(next_hop), timeout=30)

    return drain, lambda: None


def _counts(cluster: list[LabAmphora]) -> dict[str, int]:
    """The cluster's flow-rescue totals (none while rescue is off)."""
    totals: dict[str, int] = {}
    for amp in cluster:
        with amp.client() as client:
            for kind, value in client.flow_rescue().get("packets", {}).items():
                totals[kind] = totals.get(kind, 0) + int(value)
    return totals


def _cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the host so far."""
    with open("/proc/stat") as stat:
        fields = [float(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _busy_share(start: tuple[float, float], end: tuple[float, float]) -> float:
    """The host's busy share of the CPU time between two _cpu() readings."""
    return round((end[0] - start[0]) / max(1.0, end[1] - start[1]), 3)


def _delta(after: dict[str, int], before: dict[str, int], kind: str) -> int:
    return after.get(kind, 0) - before.get(kind, 0)


def _percentiles(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {}
    cuts = statistics.quantiles(samples, n=100)
    return {"p50": round(cuts[49], 3), "p99": round(cuts[98], 3)}


def _report(
    outcome: dict[str, Any],
    scenario: str,
    target: LabAmphora,
    rescue: bool,
    changed_at: float,
    counts: list[dict[str, int]],
) -> dict[str, Any]:
    """counts: the cluster's totals at the change, at the start and at the end of the steady
    window."""
    at_change, steady_from, end = counts
    report: dict[str, Any] = {
        "broken": outcome["broken"],
        "errors": outcome["errors"],
        # rescue off: every flow the router moved broke; on: the amphorae counted them
        "flows_moved": _delta(end, at_change, "flows") if rescue else outcome["broken"],
    }
    if scenario == "dead":
        own = outcome["per_amphora"].get(target.id, 0)
        report["own_connections"] = own
        report["broken_not_own"] = outcome["broken"] - outcome["broken_per_amphora"].get(
            target.id, 0
        )
        if outcome["broken_at"]:
            report["last_break_s"] = round(max(outcome["broken_at"]) - changed_at, 2)
    if rescue:
        rescued = _delta(end, at_change, "rescued")
        steady = _delta(end, steady_from, "rescued")
        report["copies_per_rescued_packet"] = (
            round(_delta(end, at_change, "copies") / rescued, 3) if rescued else None
        )
        report["copies_per_rescued_packet_steady"] = (
            round(_delta(end, steady_from, "copies") / steady, 3) if steady else None
        )
        report["dead_owner_resets"] = _delta(end, at_change, "dead_owner")
    rtts = outcome.get("rtts", [])
    before = _percentiles([ms for at, ms in rtts if changed_at - 1.0 <= at < changed_at])
    after = _percentiles([ms for at, ms in rtts if at >= changed_at + 1.0])
    report["rtt"] = {"ms_before": before, "ms_after": after}
    if before and after:
        report["rtt"]["p50_after_vs_before"] = round(after["p50"] / before["p50"], 2)
    return report


def run(
    connections: int = CONNECTIONS, ip_version: int = 4, scenarios: tuple[str, ...] = SCENARIOS
) -> dict[str, Any]:
    return FlowsBench(connections, ip_version, scenarios).run()
