"""``l3dist bench lifecycle``: how long the controller takes, through the REST API on the lab.

Per run, timed from the API request:
- ``create_to_traffic``: an ACTIVE_ACTIVE load balancer with N amphorae, an HTTP listener, a pool
  and two members, until the ToR routes the VIP to all N amphorae and requests through the VIP
  are answered (each step waits for the previous to be ACTIVE, as a client script would);
- ``create_to_active``: the load balancer alone, until ACTIVE (amphorae built and plugged);
- ``scale_out``: amphora count N -> N+1, until ACTIVE with N+1 next hops in the ToR's FIB.

Baseline, measured in the same run: ``amphora_build``, one lab amphora created directly (its
namespaces, ports and agent; what no controller can avoid). Ratios are against its median.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from l3dist_lab import amphora, member, scenario, traffic
from l3dist_lab.bench import summary
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import ControlPlane, ControlPlaneError, private_lab


def _carries_traffic(vip: str, amphorae: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = traffic.run_clients(vip, 30, timeout=1.0)
        if result["failures"] == 0 and len(result["per_amphora"]) == amphorae:
            return
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"{vip} carries no traffic through {amphorae} amphorae")


def run(runs: int = 3, amphorae: int = 3) -> dict[str, Any]:
    cfg = LabConfig()
    samples: dict[str, list[float]] = {
        "create_to_active": [],
        "create_to_traffic": [],
        "scale_out": [],
        "amphora_build": [],
    }
    with private_lab(cfg, "l3dist-bench-") as plane:
        members = [member.add("m1"), member.add("m2")]
        plane.start()
        distributor = scenario.lab_distributor(plane, cfg)
        for _ in range(runs):
            _one_run(plane, distributor["id"], members, amphorae, samples)
            start = time.monotonic()
            built = amphora.create(cfg, "bird", frontend=False)
            samples["amphora_build"].append(time.monotonic() - start)
            amphora.delete(built.id)
    baseline = statistics.median(samples["amphora_build"])
    result: dict[str, Any] = {"runs": runs, "amphorae": amphorae, "unit": "seconds"}
    for name, values in samples.items():
        result[name] = summary(values)
    result["ratio_to_amphora_build"] = {
        name: round(statistics.median(samples[name]) / baseline, 1)
        for name in ("create_to_active", "create_to_traffic", "scale_out")
    }
    return result


def _one_run(
    plane: ControlPlane,
    distributor_id: str,
    members: list[member.LabMember],
    amphorae: int,
    samples: dict[str, list[float]],
) -> None:
    start = time.monotonic()
    lb = scenario.create_lb(plane, distributor_id, amphorae)
    samples["create_to_active"].append(time.monotonic() - start)
    scenario.add_web_service(plane, lb, members)
    scenario.wait_for_ecmp(plane, lb, amphorae)
    _carries_traffic(lb["vip_address"], amphorae)
    samples["create_to_traffic"].append(time.monotonic() - start)

    start = time.monotonic()
    plane.call("PUT", scenario.lb_path(lb), {"loadbalancer": {"amphora_count": amphorae + 1}})
    plane.wait_for(scenario.lb_path(lb), "loadbalancer", "ACTIVE")
    scenario.wait_for_ecmp(plane, lb, amphorae + 1)
    samples["scale_out"].append(time.monotonic() - start)
    scenario.delete_lb(plane, lb)
