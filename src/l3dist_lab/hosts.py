"""Simulated amphora hosts: what an operator's pre-provisioned servers are, in namespaces.

A lab host is a namespace ``l3d-h<N>`` (the host's own network stack) with two links, as a
server racked next to the router has: ``mgmt0`` on lb-mgmt-net with its fixed addresses
(.20+N, below what l3dist hands out) and ``eth1``, a bare interface on the front-end network
that the agent makes its amphora's ``fe0`` from. It runs the same ``l3dist-agent`` command a
real host runs, with only its ``agent.toml``. Several lab hosts share one kernel and one
/run/netns, which real hosts do not; the agent takes its namespace name (``l3d-h<N>-hap``)
and paths from its configuration, so they never collide.

Enrolling is the operator's step, not the lab's: ``enroll()`` runs ``l3dist-agent enroll`` in
the host's namespace with a token the controller gave.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from l3dist.common.process import ManagedProcess, kill_group
from l3dist_lab import plumbing
from l3dist_lab.config import HOST_MGMT_IF, PREFIX, STATE_DIR, TOR_NS, LabConfig

HOSTS_DIR = STATE_DIR / "hosts"
FIRST_HOST_INDEX = 20  # lb-mgmt-net .20 and up: below the addresses l3dist hands out (.100)
AGENT = str(Path(sys.executable).with_name("l3dist-agent"))


@dataclass(frozen=True)
class LabHost:
    name: str  # h1, h2, ...
    namespace: str  # the host's own stack: l3d-h1
    haproxy_namespace: str  # the agent makes it: l3d-h1-hap
    mgmt_ip4: str
    mgmt_ip6: str

    @property
    def dir(self) -> Path:
        return HOSTS_DIR / self.name

    @property
    def config_path(self) -> Path:
        return self.dir / "agent.toml"

    @property
    def identity_path(self) -> Path:
        return self.dir / "tls" / "host.json"

    @property
    def host_id(self) -> str | None:
        try:
            return str(json.loads(self.identity_path.read_text())["host_id"])
        except FileNotFoundError:
            return None

    def agent_process(self) -> ManagedProcess:
        argv = plumbing.netns_enter_argv(
            self.namespace, [AGENT, "run", "--config", str(self.config_path)]
        )
        return ManagedProcess("agent", argv, self.dir, marker=str(self.config_path))


def _host(cfg: LabConfig, index: int) -> LabHost:
    name = f"h{index}"
    return LabHost(
        name=name,
        namespace=f"{PREFIX}{name}",
        haproxy_namespace=f"{PREFIX}{name}-hap",
        mgmt_ip4=cfg.mgmt.host(4, FIRST_HOST_INDEX + index),
        mgmt_ip6=cfg.mgmt.host(6, FIRST_HOST_INDEX + index),
    )


def agent_toml(cfg: LabConfig, host: LabHost, controller_url: str) -> str:
    """The host's /etc/l3dist/agent.toml (here in its lab directory)."""
    return (
        f'controller_url = "{controller_url}"\n'
        f'hostname = "lab-{host.name}"\n'
        f'state_dir = "{host.dir / "state"}"\n'
        f'tls_dir = "{host.dir / "tls"}"\n'
        f'haproxy_namespace = "{host.haproxy_namespace}"\n'
        "[management]\n"
        'interface = "mgmt0"\n'
        f'addresses = ["{host.mgmt_ip4}/{cfg.mgmt.v4.prefixlen}", '
        f'"{host.mgmt_ip6}/{cfg.mgmt.v6.prefixlen}"]\n'
        "[frontend]\n"
        'parent_interface = "eth1"\n'
    )


def create(cfg: LabConfig, index: int, controller_url: str, claimed: bool = False) -> LabHost:
    """A host racked in the lab: its namespace, its two links, its agent.toml (not enrolled).
    Its directory is the rack slot's claim: a slot taken (by another host or a lab amphora)
    is refused, unless the caller claimed it itself (claimed=True)."""
    host = _host(cfg, index)
    HOSTS_DIR.mkdir(parents=True, exist_ok=True)
    try:
        host.dir.mkdir(exist_ok=claimed)
    except FileExistsError:
        raise RuntimeError(f"rack slot {host.name} is taken ({host.dir})") from None
    (host.dir / "host.json").write_text(json.dumps(asdict(host)))
    try:
        plumbing.create_namespace(host.namespace)
        plumbing.add_veth(TOR_NS, f"{host.name}m", host.namespace, "mgmt0", master=cfg.mgmt.bridge)
        plumbing.add_address(host.namespace, "mgmt0", f"{host.mgmt_ip4}/{cfg.mgmt.v4.prefixlen}")
        plumbing.add_address(host.namespace, "mgmt0", f"{host.mgmt_ip6}/{cfg.mgmt.v6.prefixlen}")
        plumbing.add_veth(
            TOR_NS, f"{host.name}f", host.namespace, "eth1", master=cfg.frontend.bridge
        )
        host.config_path.write_text(agent_toml(cfg, host, controller_url))
    except BaseException:
        delete(host)
        raise
    return host


def enroll(host: LabHost, token: str) -> str:
    """The operator's step on the host: ``l3dist-agent enroll`` with the token; its host id."""
    argv = plumbing.netns_enter_argv(
        host.namespace, [AGENT, "enroll", "--config", str(host.config_path), f"--token={token}"]
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"enrolling {host.name} failed: {result.stderr.strip()}")
    host_id = host.host_id
    assert host_id is not None
    return host_id


def start_agent(host: LabHost, timeout: float = 20.0) -> None:
    """Start the host's agent (``l3dist-agent run``) and wait until it listens."""
    proc = host.agent_process()
    proc.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"agent of {host.name} exited:\n{proc.log_tail()}")
        probe = subprocess.run(
            plumbing.netns_exec_argv(host.namespace, ["ss", "-Htln", "sport", "= :9443"]),
            capture_output=True,
            text=True,
        )
        if probe.stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"agent of {host.name} not listening:\n{proc.log_tail()}")


def stop_agent(host: LabHost, timeout: float = 15.0) -> None:
    host.agent_process().stop(timeout=timeout)


def leftovers(host: LabHost) -> list[str]:
    """What of an amphora the host still holds (nothing, once reset): its amphora-haproxy
    namespace, a HAProxy or BGP speaker process."""
    left = []
    if host.haproxy_namespace in plumbing.list_namespaces():
        left.append(f"namespace {host.haproxy_namespace}")
    for pid in plumbing.namespace_pids(host.namespace):
        with contextlib.suppress(OSError):
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            if name in ("haproxy", "bird", "exabgp"):
                left.append(f"process {name}")
    return left


def get(name: str) -> LabHost:
    try:
        return LabHost(**json.loads((HOSTS_DIR / name / "host.json").read_text()))
    except (FileNotFoundError, TypeError, ValueError):
        raise KeyError(f"no lab host {name}") from None


def list_hosts() -> list[LabHost]:
    found = []
    for meta in sorted(HOSTS_DIR.glob("*/host.json")) if HOSTS_DIR.exists() else []:
        with contextlib.suppress(OSError, ValueError, TypeError):
            found.append(LabHost(**json.loads(meta.read_text())))
    return found


def delete(host: LabHost) -> None:
    """Remove the host completely (its agent and what it started, links, namespaces, files);
    safe to repeat and after a crash."""
    if host.dir.exists():
        with contextlib.suppress(Exception):
            stop_agent(host)
    for ns in (host.haproxy_namespace, host.namespace):
        if ns in plumbing.list_namespaces():
            for pid in plumbing.namespace_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    kill_group(os.getpgid(pid), timeout=2)
    for ifname in (f"{host.name}m", f"{host.name}f"):
        plumbing.delete_link(TOR_NS, ifname)
    # The next host in this rack slot has the same addresses: the router and the controller
    # (the machine's own port on lb-mgmt-net) must not send it to this one's MAC.
    for address in (host.mgmt_ip4, host.mgmt_ip6):
        plumbing.forget_neighbor(TOR_NS, address)
        if plumbing.link_exists(None, HOST_MGMT_IF):
            plumbing.forget_neighbor(None, address, HOST_MGMT_IF)
    for ns in (host.haproxy_namespace, host.namespace):
        plumbing.delete_namespace(ns)
    shutil.rmtree(host.dir, ignore_errors=True)
