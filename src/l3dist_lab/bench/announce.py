"""``l3dist bench announce``: Register/Unregister Amphora to ToR kernel FIB, beside the speaker.

Both paths are timed to the same event (the ToR's netlink route update) in the same run:
- ``agent``: the Register Amphora / Unregister Amphora HTTP calls (validation, persistence,
  speaker reconfiguration);
- ``speaker_direct``: the same route change handed straight to the speaker driver (rewrite and
  ``birdc configure`` for BIRD, the process API for ExaBGP), bypassing the agent.
The difference is what l3dist adds on top of BGP and FRR.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from l3dist.bgp.base import Route, host_prefix, make_driver
from l3dist.contracts import agent_config
from l3dist_lab import amphora, fabric, vips
from l3dist_lab.bench import goal, summary
from l3dist_lab.config import LabConfig
from l3dist_lab.fib import FibWatcher, has, lacks

# What the agent may add to a route change (HTTP, validation, the fsync'd state write).
GOAL_OVERHEAD_MS = 5.0


def _timed(
    fib: FibWatcher,
    prefix: str,
    action: Callable[[], object],
    cond: Callable[[frozenset[str]], bool],
) -> float:
    start = time.perf_counter()
    action()
    return (fib.wait_for(prefix, cond, start) - start) * 1000


def run(speaker_driver: str = "bird", runs: int = 20, version: int = 4) -> dict[str, Any]:
    cfg = LabConfig()
    if fabric.is_up():
        raise RuntimeError("a lab is already running; `l3dist lab down` first")
    try:
        fabric.up(cfg)
        amps = amphora.create_many(cfg, speaker_driver, 3)
        vip = cfg.vip(version)
        prefix = host_prefix(vip)
        measured, others = amps[0], amps[1:]
        nexthop = measured.frontend_ip(version)
        with FibWatcher() as fib:
            for other in others:
                vips.announce(other, vip)
            fib.wait_until(prefix, lambda hops: len(hops) == len(others), timeout=30)
            client = measured.client()
            present, absent = has(nexthop), lacks(nexthop)

            # The direct path: a driver attached to the measured amphora's running speaker.
            drive = agent_config.load(measured.agent_config_path)
            local: dict[int, str] = {a.version: str(a.ip) for a in drive.management.addresses}
            direct = make_driver(drive.bgp, local, drive.state_dir / "bgp", drive.anycast_prefixes)
            peer_id = next(p.id for s, p in drive.bgp.peers() if s.ip_version == version)
            route = Route(prefix, nexthop, peer_id)
            direct.routes = frozenset()

            results: dict[str, dict[str, list[float]]] = {
                "agent": {"announce_ms": [], "withdraw_ms": []},
                "speaker_direct": {"announce_ms": [], "withdraw_ms": []},
            }
            for _ in range(runs):
                client.plug_vip(vip)
                results["agent"]["announce_ms"].append(
                    _timed(
                        fib,
                        prefix,
                        lambda: client.register_amphora(measured.id, vip, nexthop),
                        present,
                    )
                )
                results["agent"]["withdraw_ms"].append(
                    _timed(
                        fib,
                        prefix,
                        lambda: client.unregister_amphora(measured.id, vip, nexthop),
                        absent,
                    )
                )
                results["speaker_direct"]["announce_ms"].append(
                    _timed(fib, prefix, lambda: direct.apply(frozenset({route})), present)
                )
                results["speaker_direct"]["withdraw_ms"].append(
                    _timed(fib, prefix, lambda: direct.apply(frozenset()), absent)
                )
            client.close()
        agent = {k: summary(v) for k, v in results["agent"].items()}
        speaker = {k: summary(v) for k, v in results["speaker_direct"].items()}
        overhead = {k: round(agent[k]["median"] - speaker[k]["median"], 2) for k in agent}
        return {
            "benchmark": "announce",
            "speaker_driver": speaker_driver,
            "ip_version": version,
            "runs": runs,
            "ecmp_group_size": len(amps),
            "agent": agent,
            "speaker_direct": speaker,
            "l3dist_overhead_ms": overhead,
            "ratio_agent_to_direct": {
                k: round(agent[k]["median"] / speaker[k]["median"], 3) for k in agent
            },
            "goal": goal(
                "median announce overhead of the agent over the speaker driven directly",
                overhead["announce_ms"],
                GOAL_OVERHEAD_MS,
                "ms",
            ),
        }
    finally:
        fabric.down()
