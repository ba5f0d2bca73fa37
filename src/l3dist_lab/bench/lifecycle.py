"""``l3dist bench lifecycle``: how long the controller takes, through the REST API on the lab.

Per run, timed from the API request:
- ``create_to_traffic``: an ACTIVE_ACTIVE load balancer with N amphorae, an HTTP listener, a pool
  and two members, until the ToR routes the VIP to all N amphorae and requests through the VIP
  are answered (each step waits for the previous to be ACTIVE, as a client script would);
- ``populated_to_traffic``: the same load balancer in one fully populated create (Octavia's
  single call: one request, one flow), until the same;
- ``create_to_active``: the load balancer alone, until ACTIVE (amphorae built and plugged);
- ``member_add`` / ``listener_add``: one more member, then one more listener, on the populated
  load balancer, until it is ACTIVE again (the configuration is on every amphora);
- ``scale_out``: amphora count N -> N+1, until ACTIVE with N+1 next hops in the ToR's FIB.

The controller runs as on an operator's site (``static`` network and ``hosts`` compute
drivers, the lab's hosts enrolled). Baseline, measured in the same run, alternated with the
runs: ``amphora_build``, one amphora started on a host straight through its agent's API (the
assignment the hosts driver sends, until the agent reports it running; what no controller can
avoid), on a host the operator took out of the pool for it. Ratios are against its median.
Each run alternates the variants: step by step, fully populated, the baseline.
"""

from __future__ import annotations

import ipaddress
import statistics
import time
import uuid
from typing import Any

from l3dist.amphora_client import AgentClient
from l3dist.certificates import client_context
from l3dist.contracts.agent_api import AmphoraAssignment
from l3dist.contracts.agent_config import BgpConfig
from l3dist_lab import amphora, hosts, member, scenario, site, traffic
from l3dist_lab.bench import goal, summary
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
        "populated_to_traffic": [],
        "member_add": [],
        "listener_add": [],
        "scale_out": [],
        "amphora_build": [],
    }
    with private_lab(cfg, "l3dist-bench-") as plane:
        members = [member.add("m1"), member.add("m2")]
        plane.start()
        lab_site = site.build(plane, amphorae + 2, cfg)  # scale-out takes one; the baseline's
        baseline_host = lab_site.hosts[-1]
        plane.call("PUT", f"/v2/octavia/amphora-hosts/{baseline_host.host_id}",
                   {"amphora_host": {"enabled": False}})  # fmt: skip
        for _ in range(runs):
            _one_run(
                plane, lab_site.subnets, lab_site.distributor["id"], members, amphorae, samples
            )
            _populated_run(
                plane, lab_site.subnets, lab_site.distributor["id"], members, amphorae, samples
            )
            samples["amphora_build"].append(_build_directly(lab_site, baseline_host))
    baseline = statistics.median(samples["amphora_build"])
    result: dict[str, Any] = {"runs": runs, "amphorae": amphorae, "unit": "seconds"}
    for name, values in samples.items():
        result[name] = summary(values)
    result["ratio_to_amphora_build"] = {
        name: round(statistics.median(samples[name]) / baseline, 1)
        for name in ("create_to_active", "create_to_traffic", "populated_to_traffic",
                     "scale_out")
    }  # fmt: skip
    ratios = result["ratio_to_amphora_build"]
    result["goals"] = [
        goal("fully populated create until it carries traffic, in amphora builds (issue 19)",
             ratios["populated_to_traffic"], 3.0, "x"),
        goal("member added until on every amphora, median (issue 19)",
             result["member_add"]["median"], 0.3, "s"),
        goal("listener added until on every amphora, median (issue 19)",
             result["listener_add"]["median"], 0.3, "s"),
    ]  # fmt: skip
    return result


def _build_directly(lab_site: site.Site, host: hosts.LabHost) -> float:
    """One amphora on the host through its agent's API, timed until running; then reset."""
    assignment = AmphoraAssignment(
        amphora_id=str(uuid.uuid4()),
        bgp=BgpConfig(
            driver="bird",
            router_id=ipaddress.IPv4Address(host.mgmt_ip4),
            speakers=amphora.default_peers(lab_site.cfg),
        ),
        anycast_prefixes=[lab_site.cfg.anycast_v4, lab_site.cfg.anycast_v6],
    )
    context = client_context(lab_site.plane.state_dir / "ca")
    with AgentClient(str(host.host_id), host.mgmt_ip4, context, timeout=30) as client:
        start = time.monotonic()
        client.assign_amphora(assignment)
        while not _running(client.host_amphora(), assignment.amphora_id):
            if time.monotonic() > start + 30:
                raise ControlPlaneError(f"{host.name} did not start the amphora in 30 s")
            time.sleep(0.02)
        took = time.monotonic() - start
        client.reset_amphora()
    return took


def _running(state: dict[str, Any], amphora_id: str) -> bool:
    return state.get("amphora_id") == amphora_id and bool(state.get("running"))


def _one_run(
    plane: ControlPlane,
    subnets: dict[str, str],
    distributor_id: str,
    members: list[member.LabMember],
    amphorae: int,
    samples: dict[str, list[float]],
) -> None:
    start = time.monotonic()
    lb = scenario.create_lb(plane, distributor_id, amphorae, subnets=subnets)
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


def _until_active(plane: ControlPlane, lb: dict[str, Any], timeout: float = 30) -> None:
    """Polled finer than ``wait_for`` (10 ms): the changes timed here take tenths of seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status = plane.call("GET", scenario.lb_path(lb))["loadbalancer"]["provisioning_status"]
        if status == "ACTIVE":
            return
        if status == "ERROR" or time.monotonic() > deadline:
            raise ControlPlaneError(f"load balancer {lb['id']} is {status}, not ACTIVE")
        time.sleep(0.01)


def _populated_run(
    plane: ControlPlane,
    subnets: dict[str, str],
    distributor_id: str,
    members: list[member.LabMember],
    amphorae: int,
    samples: dict[str, list[float]],
) -> None:
    start = time.monotonic()
    lb = scenario.create_populated_lb(plane, distributor_id, amphorae, members, subnets=subnets)
    scenario.wait_for_ecmp(plane, lb, amphorae)
    _carries_traffic(lb["vip_address"], amphorae)
    samples["populated_to_traffic"].append(time.monotonic() - start)

    extra = members[0]
    start = time.monotonic()
    plane.call("POST", f"/v2/lbaas/pools/{lb['pool']['id']}/members",
               {"member": {"address": extra.ip4, "protocol_port": extra.port + 1}},
               expect=201)  # fmt: skip
    _until_active(plane, lb)
    samples["member_add"].append(time.monotonic() - start)

    start = time.monotonic()
    plane.call("POST", "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 8443}},
        expect=201)  # fmt: skip
    _until_active(plane, lb)
    samples["listener_add"].append(time.monotonic() - start)
    scenario.delete_lb(plane, lb)
