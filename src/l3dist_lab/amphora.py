"""Lab amphorae: two namespaces each, as in the spec, with a real agent, BGP speaker and HAProxy.

- ``l3d-amp-<id8>`` is the amphora's default namespace: management port on lb-mgmt-net, the agent
  and the BGP speaker (which peers with the ToR over the management network).
- ``l3d-amp-<id8>-hap`` is its amphora-haproxy namespace: the front-end port on the provider
  network (the next hop the fabric routes the VIP to), the VIP on loopback, and HAProxy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from l3dist.amphora_client import AgentClient, AgentUnreachable
from l3dist.certificates import (
    AmphoraCertificates,
    client_context,
    configured_ca,
    write_amphora_files,
)
from l3dist.common import config as controller_config
from l3dist.common.process import ManagedProcess, kill_group
from l3dist.contracts import agent_config
from l3dist.contracts.agent_api import AGENT_PORT
from l3dist.contracts.agent_config import (
    AgentConfig,
    BgpSpeakerConfig,
    HeartbeatConfig,
    IPNetwork,
)
from l3dist.controller.heartbeat import heartbeat_settings
from l3dist.network.catalog import stable_id
from l3dist.network.static import OWNER_FRONTEND, OWNER_MANAGEMENT
from l3dist_lab import fabric, plumbing
from l3dist_lab.config import STATE_DIR, LabConfig
from l3dist_lab.networks import haproxy_namespace

AMPHORAE_DIR = STATE_DIR / "amphorae"


@dataclass(frozen=True)
class LabAmphora:
    id: str
    mgmt_ns: str
    haproxy_ns: str
    mgmt_ip4: str
    mgmt_ip6: str
    frontend_ip4: str
    frontend_ip6: str
    speaker_driver: str
    created: float

    @property
    def dir(self) -> Path:
        return AMPHORAE_DIR / self.id

    @property
    def config_drive(self) -> Path:
        return self.dir / "config-drive" / "amphora-agent.json"

    @property
    def agent_url(self) -> str:
        return f"https://{self.mgmt_ip4}:{AGENT_PORT}"

    def frontend_ip(self, version: int) -> str:
        return self.frontend_ip4 if version == 4 else self.frontend_ip6

    def client(self, timeout: float = 10.0) -> AgentClient:
        """A client with the controller's certificate (the configured local CA)."""
        context = client_context(configured_ca().directory)
        return AgentClient(self.id, self.mgmt_ip4, context, timeout=timeout)

    def agent_process(self) -> ManagedProcess:
        argv = plumbing.netns_exec_argv(
            self.mgmt_ns,
            [sys.executable, "-m", "l3dist.amphora_agent", "--config", str(self.config_drive)],
        )
        return ManagedProcess("agent", argv, self.dir, marker=str(self.config_drive))


def default_peers(
    cfg: LabConfig, password: str | None = None, bfd: bool = True
) -> list[BgpSpeakerConfig]:
    """One speaker per IP version, each peering with the ToR (the lab's BGP peer profiles)."""
    speakers = []
    for version in (4, 6):
        speakers.append(
            BgpSpeakerConfig.model_validate(
                {
                    "id": f"speaker-v{version}",
                    "ip_version": version,
                    "local_as": cfg.amphora_asn,
                    "peers": [
                        {
                            "id": f"tor-v{version}",
                            "peer_ip": cfg.mgmt.gateway(version),
                            "remote_as": cfg.tor_asn,
                            "auth_type": "md5" if password else None,
                            "password": password,
                            "ttl_hops": 1,
                            "hold_time": cfg.hold_time,
                            "keepalive_interval": cfg.keepalive,
                            "bfd_enabled": bfd,
                            "bfd_transmit_interval_ms": cfg.bfd_interval_ms,
                            "bfd_receive_interval_ms": cfg.bfd_interval_ms,
                            "bfd_detect_multiplier": cfg.bfd_multiplier,
                        }
                    ],
                }
            )
        )
    return speakers


def _meta_path(amphora_id: str) -> Path:
    return AMPHORAE_DIR / amphora_id / "amphora.json"


def list_amphorae() -> list[LabAmphora]:
    if not AMPHORAE_DIR.exists():
        return []
    result = []
    for meta in sorted(AMPHORAE_DIR.glob("*/amphora.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            result.append(LabAmphora(**json.loads(meta.read_text())))
    return sorted(result, key=lambda a: a.created)


def get(amphora_id: str) -> LabAmphora:
    try:
        return LabAmphora(**json.loads(_meta_path(amphora_id).read_text()))
    except (FileNotFoundError, TypeError):
        raise KeyError(f"no lab amphora {amphora_id}") from None


def create(
    cfg: LabConfig | None = None,
    speaker_driver: str = "bird",
    speakers: list[BgpSpeakerConfig] | None = None,
    amphora_id: str | None = None,
    wait: bool = True,
    frontend: bool = True,
    certificates: AmphoraCertificates | None = None,
    heartbeat: HeartbeatConfig | None = None,
    anycast_prefixes: list[IPNetwork] | None = None,
) -> LabAmphora:
    """Create an amphora: namespaces, its management and front-end ports (made by the lab network
    driver, addresses from its IPAM), config drive, then start its agent.

    frontend=False leaves the front-end port to the network driver's plug_vip (the controller's
    flows); the agent then reads it from the kernel. Without certificates (a lab amphora made by
    hand), the configured local CA issues them, as the controller does; heartbeats go where the
    configuration says (the health manager). anycast_prefixes are the pools it may announce in
    (the controller passes its network driver's anycast subnets); None, for an amphora made by
    hand, means the lab's anycast pools; an empty list, an amphora that announces nothing."""
    cfg = cfg or LabConfig()
    prefixes = (
        [cfg.anycast_v4, cfg.anycast_v6] if anycast_prefixes is None else list(anycast_prefixes)
    )
    driver = fabric.network_driver()
    amphora_id = amphora_id or str(uuid.uuid4())
    mgmt_ns = f"l3d-amp-{amphora_id.replace('-', '')[:8]}"
    haproxy_ns = haproxy_namespace(amphora_id)
    AMPHORAE_DIR.joinpath(amphora_id).mkdir(parents=True, exist_ok=True)
    # Recorded first, so delete() finds a half-made amphora.
    _meta_path(amphora_id).write_text(
        json.dumps({"id": amphora_id, "mgmt_ns": mgmt_ns, "haproxy_ns": haproxy_ns})
    )
    try:
        plumbing.create_namespace(mgmt_ns)
        plumbing.create_namespace(haproxy_ns)
        mgmt = driver.create_port(
            stable_id(cfg.mgmt.name), mgmt_ns, "mgmt0", amphora_id, OWNER_MANAGEMENT
        )
        fe_port = (
            driver.create_port(
                stable_id(cfg.frontend.name),
                haproxy_ns,
                "fe0",
                amphora_id,
                OWNER_FRONTEND,
                default_routes=True,
            )
            if frontend
            else None
        )
        amp = LabAmphora(
            id=amphora_id,
            mgmt_ns=mgmt_ns,
            haproxy_ns=haproxy_ns,
            mgmt_ip4=mgmt.address(4),
            mgmt_ip6=mgmt.address(6),
            frontend_ip4=fe_port.address(4) if fe_port else "",
            frontend_ip6=fe_port.address(6) if fe_port else "",
            speaker_driver=speaker_driver,
            created=time.time(),
        )
        _meta_path(amphora_id).write_text(json.dumps(amp.__dict__))
        tls_files = write_amphora_files(
            certificates or configured_ca().issue_amphora(amphora_id), amp.config_drive.parent
        )
        config = AgentConfig.model_validate(
            {
                "amphora_id": amphora_id,
                "management": {
                    "name": "mgmt0",
                    "addresses": [
                        f"{amp.mgmt_ip4}/{cfg.mgmt.v4.prefixlen}",
                        f"{amp.mgmt_ip6}/{cfg.mgmt.v6.prefixlen}",
                    ],
                },
                "frontend": {
                    "name": "fe0",
                    "addresses": [
                        f"{amp.frontend_ip4}/{cfg.frontend.v4.prefixlen}",
                        f"{amp.frontend_ip6}/{cfg.frontend.v6.prefixlen}",
                    ]
                    if fe_port
                    else [],
                    "gateways": [cfg.frontend.gateway(4), cfg.frontend.gateway(6)]
                    if fe_port
                    else [],
                },
                "haproxy_namespace": amp.haproxy_ns,
                "bind_port": AGENT_PORT,
                "tls": {"client_ca": str(tls_files[0]), "server_pem": str(tls_files[1])},
                "heartbeat": (heartbeat or heartbeat_settings(controller_config.load())).model_dump(
                    mode="json", context={"secrets": True}
                ),
                "state_dir": str(amp.dir / "agent"),
                "anycast_prefixes": [str(p) for p in prefixes],
                "bgp": {
                    "driver": speaker_driver,
                    "router_id": amp.mgmt_ip4,
                    "speakers": [
                        s.model_dump(mode="json", context={"secrets": True})
                        for s in (
                            speakers
                            if speakers is not None
                            # ExaBGP has no BFD (lab notes, trap 4).
                            else default_peers(cfg, bfd=speaker_driver == "bird")
                        )
                    ],
                },
            }
        )
        agent_config.dump(config, amp.config_drive)
        start_agent(amp, wait=wait)
    except BaseException:
        delete(amphora_id)
        raise
    return amp


def create_many(cfg: LabConfig, speaker_driver: str, count: int) -> list[LabAmphora]:
    """count amphorae, created in parallel (each agent start takes most of a second)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: create(cfg, speaker_driver), range(count)))


def start_agent(amp: LabAmphora, wait: bool = True, timeout: float = 20.0) -> None:
    proc = amp.agent_process()
    proc.start()
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"agent of amphora {amp.id} exited:\n{proc.log_tail()}")
        with contextlib.suppress(AgentUnreachable), amp.client(timeout=1) as client:
            client.info()
            return
        time.sleep(0.05)
    raise RuntimeError(f"agent of amphora {amp.id} not answering:\n{proc.log_tail()}")


def stop_agent(amp: LabAmphora, timeout: float = 10.0) -> None:
    """Stop the agent gracefully (it stops its speaker and HAProxy)."""
    amp.agent_process().stop(timeout=timeout)


def signal_processes(amphora_id: str, sig: signal.Signals) -> int:
    """Send sig to every process in the amphora's namespaces (SIGSTOP: a frozen amphora, as a
    hung VM; SIGCONT: thawed). Returns how many got it."""
    names = json.loads(_meta_path(amphora_id).read_text())
    count = 0
    for ns in (names["mgmt_ns"], names["haproxy_ns"]):
        for pid in plumbing.namespace_pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                count += 1
    return count


def cut_off(amphora_id: str, cut: bool = True) -> None:
    """A dead amphora's front end: every IP packet into its amphora-haproxy namespace dropped
    (with SIGSTOP alone its kernel still ACKs what reaches its sockets), or back again."""
    names = json.loads(_meta_path(amphora_id).read_text())
    script = "table inet l3dist_dead\ndelete table inet l3dist_dead\n"
    if cut:
        script += (
            "table inet l3dist_dead {\n  chain prerouting {\n"
            "    type filter hook prerouting priority -500; policy drop;\n  }\n}\n"
        )
    subprocess.run(
        ["ip", "netns", "exec", names["haproxy_ns"], "nft", "-f", "-"],
        input=script,
        text=True,
        check=True,
        capture_output=True,
    )


def delete(amphora_id: str) -> None:
    """Remove an amphora completely (processes, ports, namespaces, files); safe to repeat and
    after a crash."""
    meta = _meta_path(amphora_id)
    try:
        names = json.loads(meta.read_text())
    except (FileNotFoundError, ValueError):
        return
    namespaces = (names["mgmt_ns"], names["haproxy_ns"])
    if "created" in names:
        stop_agent(LabAmphora(**names))
    for ns in namespaces:
        if ns in plumbing.list_namespaces():
            for pid in plumbing.namespace_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    kill_group(os.getpgid(pid), timeout=2)
    driver = fabric.network_driver()
    for port in driver.ports_of(amphora_id):
        driver.delete_port(port.id)
    for ns in namespaces:
        plumbing.delete_namespace(ns)
    shutil.rmtree(AMPHORAE_DIR / amphora_id, ignore_errors=True)
