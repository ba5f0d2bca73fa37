"""Lab amphorae: two namespaces each, as in the spec, with a real agent, BGP speaker and HAProxy.

- ``l3d-amp-<id8>`` is the amphora's default namespace: management port on lb-mgmt-net, the agent
  and the BGP speaker (which peers with the ToR over the management network).
- ``l3d-amp-<id8>-hap`` is its amphora-haproxy namespace: the front-end port on the provider
  network (the next hop the fabric routes the VIP to), the VIP on loopback, and HAProxy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from l3dist.amphora_agent import config as agent_config
from l3dist.amphora_agent.config import AgentConfig, BgpSpeakerConfig
from l3dist.amphora_client import AgentClient
from l3dist.common.process import ManagedProcess, kill_group
from l3dist.lab import plumbing
from l3dist.lab.config import STATE_DIR, TOR_NS, LabConfig

AMPHORAE_DIR = STATE_DIR / "amphorae"
AGENT_PORT = 9443


@dataclass(frozen=True)
class LabAmphora:
    id: str
    index: int
    mgmt_ns: str
    haproxy_ns: str
    mgmt_ip4: str
    mgmt_ip6: str
    frontend_ip4: str
    frontend_ip6: str
    speaker_driver: str

    @property
    def dir(self) -> Path:
        return AMPHORAE_DIR / self.id

    @property
    def config_drive(self) -> Path:
        return self.dir / "config-drive" / "amphora-agent.json"

    @property
    def agent_url(self) -> str:
        return f"http://{self.mgmt_ip4}:{AGENT_PORT}"

    def frontend_ip(self, version: int) -> str:
        return self.frontend_ip4 if version == 4 else self.frontend_ip6

    def client(self) -> AgentClient:
        return AgentClient(self.agent_url)

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


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    AMPHORAE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "amphorae.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _meta_path(amphora_id: str) -> Path:
    return AMPHORAE_DIR / amphora_id / "amphora.json"


def list_amphorae() -> list[LabAmphora]:
    if not AMPHORAE_DIR.exists():
        return []
    result = []
    for meta in sorted(AMPHORAE_DIR.glob("*/amphora.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            result.append(LabAmphora(**json.loads(meta.read_text())))
    return sorted(result, key=lambda a: a.index)


def get(amphora_id: str) -> LabAmphora:
    try:
        return LabAmphora(**json.loads(_meta_path(amphora_id).read_text()))
    except FileNotFoundError:
        raise KeyError(f"no lab amphora {amphora_id}") from None


def create(
    cfg: LabConfig | None = None,
    speaker_driver: str = "bird",
    speakers: list[BgpSpeakerConfig] | None = None,
    amphora_id: str | None = None,
    wait: bool = True,
) -> LabAmphora:
    """Create an amphora: namespaces, ports, config drive, then start its agent."""
    cfg = cfg or LabConfig()
    amphora_id = amphora_id or str(uuid.uuid4())
    with _allocation_lock():
        used = {a.index for a in list_amphorae()}
        index = next(i for i in range(1, 200) if i not in used)
        host = cfg.amphora_first_index + index
        short = amphora_id.replace("-", "")[:8]
        amp = LabAmphora(
            id=amphora_id,
            index=index,
            mgmt_ns=f"l3d-amp-{short}",
            haproxy_ns=f"l3d-amp-{short}-hap",
            mgmt_ip4=cfg.mgmt.host(4, host),
            mgmt_ip6=cfg.mgmt.host(6, host),
            frontend_ip4=cfg.frontend.host(4, host),
            frontend_ip6=cfg.frontend.host(6, host),
            speaker_driver=speaker_driver,
        )
        amp.dir.mkdir(parents=True, exist_ok=True)
        _meta_path(amphora_id).write_text(json.dumps(amp.__dict__))
    try:
        _plumb(cfg, amp, short)
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
                    ],
                    "gateways": [cfg.frontend.gateway(4), cfg.frontend.gateway(6)],
                },
                "haproxy_namespace": amp.haproxy_ns,
                "bind_port": AGENT_PORT,
                "state_dir": str(amp.dir / "agent"),
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


def port_mac(network: int, host: int) -> str:
    """A MAC derived from the port's address: an address reused by a new amphora keeps its MAC,
    so neighbour caches on the ToR and the controller never point at a deleted port."""
    return f"02:1d:{network:02x}:00:{host >> 8:02x}:{host & 0xFF:02x}"


def create_many(cfg: LabConfig, speaker_driver: str, count: int) -> list[LabAmphora]:
    """count amphorae, created in parallel (each agent start takes most of a second)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: create(cfg, speaker_driver), range(count)))


def _plumb(cfg: LabConfig, amp: LabAmphora, short: str) -> None:
    host = cfg.amphora_first_index + amp.index
    plumbing.create_namespace(amp.mgmt_ns)
    plumbing.create_namespace(amp.haproxy_ns)
    plumbing.add_veth(
        TOR_NS,
        f"m-{short}",
        amp.mgmt_ns,
        "mgmt0",
        master=cfg.mgmt.bridge,
        peer_mac=port_mac(0x0A, host),
    )
    plumbing.add_veth(
        TOR_NS,
        f"f-{short}",
        amp.haproxy_ns,
        "fe0",
        master=cfg.frontend.bridge,
        peer_mac=port_mac(0x0B, host),
    )
    for version in (4, 6):
        plumbing.add_address(
            amp.mgmt_ns,
            "mgmt0",
            f"{cfg.mgmt.host(version, cfg.amphora_first_index + amp.index)}/"
            f"{cfg.mgmt.subnet(version).prefixlen}",
        )
        plumbing.add_address(
            amp.haproxy_ns,
            "fe0",
            f"{amp.frontend_ip(version)}/{cfg.frontend.subnet(version).prefixlen}",
        )
        plumbing.add_default_route(amp.haproxy_ns, cfg.frontend.gateway(version))


def start_agent(amp: LabAmphora, wait: bool = True, timeout: float = 20.0) -> None:
    proc = amp.agent_process()
    proc.start()
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"agent of amphora {amp.id} exited:\n{proc.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{amp.agent_url}/1.0/info", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"agent of amphora {amp.id} not answering:\n{proc.log_tail()}")


def stop_agent(amp: LabAmphora, timeout: float = 10.0) -> None:
    """Stop the agent gracefully (it stops its speaker and HAProxy)."""
    amp.agent_process().stop(timeout=timeout)


def delete(amphora_id: str) -> None:
    """Remove an amphora completely; safe to repeat and after a crash."""
    try:
        amp = get(amphora_id)
    except KeyError:
        return
    stop_agent(amp)
    for ns in (amp.mgmt_ns, amp.haproxy_ns):
        if ns in plumbing.list_namespaces():
            for pid in plumbing.namespace_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    kill_group(os.getpgid(pid), timeout=2)
    short = amphora_id.replace("-", "")[:8]
    plumbing.delete_link(TOR_NS, f"m-{short}")
    plumbing.delete_link(TOR_NS, f"f-{short}")
    plumbing.delete_namespace(amp.mgmt_ns)
    plumbing.delete_namespace(amp.haproxy_ns)
    shutil.rmtree(amp.dir, ignore_errors=True)
