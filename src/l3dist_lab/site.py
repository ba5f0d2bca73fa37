"""An operator's site on the lab: the control plane (``static`` network and ``hosts`` compute
drivers), the site's networks defined through the admin API, the fabric's BGP peer profiles and
distributor, and a rack of amphora hosts, each enrolled with a one-time token and running
``l3dist-agent run``. What the end-to-end tests and the benchmarks build on; the demo tells the
same story with the CLI.

Also the operator's (and the lab's) hands on a host: the agent client the controller would use,
and freezing a host as a hung machine (its processes stopped and its kernel silent).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from l3dist.amphora_client import AgentClient
from l3dist.certificates import client_context
from l3dist.contracts.agent_api import AmphoraAssignment
from l3dist_lab import hosts, plumbing, scenario
from l3dist_lab.config import TOR_NS, LabConfig
from l3dist_lab.controlplane import ControlPlane
from l3dist_lab.hosts import LabHost


def rack(plane: ControlPlane, cfg: LabConfig, indices: range) -> list[LabHost]:
    """Hosts racked, enrolled with a token each (the admin API) and their agents running;
    made in parallel (each agent's start is most of a second). A host made before a failure
    is left for the caller's teardown (``hosts.list_hosts``)."""

    def one(index: int) -> LabHost:
        host = hosts.create(cfg, index, plane.url)
        added = plane.call("POST", "/v2/octavia/amphora-hosts",
                           {"amphora_host": {"name": host.name}}, expect=201)  # fmt: skip
        hosts.enroll(host, added["enrollment_token"])
        hosts.start_agent(host)
        return host

    with ThreadPoolExecutor(min(8, len(indices)) or 1) as workers:
        return list(workers.map(one, indices))


@dataclass
class Site:
    plane: ControlPlane
    cfg: LabConfig
    subnets: dict[str, str]  # subnet ids by name (``anycast-net-v4``)
    distributor: dict[str, Any]
    hosts: list[LabHost]

    def host_of(self, amphora: dict[str, Any]) -> LabHost:
        """The host an amphora (an API row) runs on: its compute id is the host's id."""
        for host in self.hosts:
            if host.host_id == amphora["compute_id"]:
                return host
        raise KeyError(f"amphora {amphora['id']} is on no host of the site")

    def agent(self, amphora: dict[str, Any], timeout: float = 10.0) -> AgentClient:
        """The amphora's agent, as the controller reaches it (mutual TLS, the host's name)."""
        host = self.host_of(amphora)
        context = client_context(self.plane.state_dir / "ca")
        return AgentClient(str(host.host_id), host.mgmt_ip4, context, timeout=timeout)

    def pool(self) -> dict[str, dict[str, Any]]:
        """The amphora hosts by name, as the admin API lists them."""
        rows = self.plane.call("GET", "/v2/octavia/amphora-hosts")["amphora_hosts"]
        return {h["name"]: h for h in rows}


def build(plane: ControlPlane, host_count: int, cfg: LabConfig | None = None) -> Site:
    """The site on a started control plane: networks, the distributor, ``host_count`` hosts."""
    cfg = cfg or plane.lab
    subnets = scenario.define_networks(plane, cfg)
    distributor = scenario.lab_distributor(plane, cfg)
    return Site(plane, cfg, subnets, distributor, rack(plane, cfg, range(1, host_count + 1)))


def assignment(host: LabHost) -> AmphoraAssignment | None:
    """What the controller gave the host (the agent keeps it on the host's disk)."""
    path = host.dir / "state" / "assignment.json"
    return AmphoraAssignment.model_validate_json(path.read_text()) if path.exists() else None


def signal_host(host: LabHost, sig: signal.Signals) -> int:
    """sig to every process of the host (its agent, speaker, HAProxy): SIGSTOP freezes it as a
    hung machine, SIGCONT thaws it. Returns how many got it."""
    count = 0
    for ns in (host.namespace, host.haproxy_namespace):
        if ns in plumbing.list_namespaces():
            for pid in plumbing.namespace_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                    count += 1
    return count


def silence(host: LabHost, silent: bool = True) -> None:
    """Every packet into the host's own stack dropped (SIGSTOP leaves its kernel answering):
    its agent API, BGP, BFD; or back again. Its amphora's front end needs nothing: BFD takes
    its route away."""
    script = "table inet l3dist_frozen\ndelete table inet l3dist_frozen\n"
    if silent:
        script += (
            "table inet l3dist_frozen {\n  chain prerouting {\n"
            "    type filter hook prerouting priority -500; policy drop;\n  }\n}\n"
        )
    subprocess.run(["ip", "netns", "exec", host.namespace, "nft", "-f", "-"], input=script,
                   text=True, check=True, capture_output=True)  # fmt: skip


def freeze(host: LabHost) -> int:
    """A hung machine: its kernel silent first (it would still answer for frozen processes),
    then its processes stopped; returns how many."""
    silence(host, True)
    return signal_host(host, signal.SIGSTOP)


def thaw(host: LabHost) -> None:
    silence(host, False)
    signal_host(host, signal.SIGCONT)


def management_link(host: LabHost, up: bool) -> None:
    """The host's cable to lb-mgmt-net, pulled or plugged at the router's side."""
    state = "up" if up else "down"
    subprocess.run(["ip", "-n", TOR_NS, "link", "set", f"{host.name}m", state], check=True)
