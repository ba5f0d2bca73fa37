"""Lab amphorae for the agent's and the speakers' own tests: a lab host each, set up as the
``hosts`` compute driver sets up a host, with no controller running.

``create()`` racks a lab host (``l3dist_lab.hosts``: its own namespace with ``mgmt0`` on
lb-mgmt-net and a bare ``eth1`` on the front-end network, its ``agent.toml``), certifies it as
enrollment does (the key and the signing request made by the agent's own code on the host, the
request signed by the configured local CA: the controller's), starts ``l3dist-agent run``, and
then makes the calls the controller's flows make: ``PUT /1.0/amphora`` (speakers and peers,
heartbeats, anycast prefixes) and ``PUT /1.0/plug/frontend`` with a front-end port reserved in
the lab's networks. From then on it is an amphora on a host like any other: the agent made its
amphora-haproxy namespace (``l3d-h<N>-hap``) and its ``fe0``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from l3dist.amphora_agent import enroll
from l3dist.amphora_agent.host import AMPHORA_CONFIG
from l3dist.amphora_client import AgentClient, AgentUnreachable
from l3dist.certificates import client_context, configured_ca
from l3dist.common import config as controller_config
from l3dist.contracts import host_config
from l3dist.contracts.agent_api import AGENT_PORT, AmphoraAssignment
from l3dist.contracts.agent_config import (
    BgpConfig,
    BgpSpeakerConfig,
    HeartbeatConfig,
    IPNetwork,
    NexthopBfd,
    ServiceType,
)
from l3dist.contracts.enrollment import EnrollResponse
from l3dist.controller.heartbeat import heartbeat_settings
from l3dist.network.catalog import stable_id
from l3dist.network.frontend import frontend_plug
from l3dist.network.static import OWNER_FRONTEND
from l3dist_lab import fabric, hosts, plumbing
from l3dist_lab.config import STATE_DIR, LabConfig
from l3dist_lab.hosts import HOSTS_DIR, LabHost

AMPHORAE_DIR = STATE_DIR / "amphorae"
MAX_HOSTS = 79  # lb-mgmt-net .21 to .99: below the addresses the IPAM hands out
ASSIGN_TIMEOUT = 30.0  # as the hosts compute driver's: starting ExaBGP takes a few seconds
NO_CONTROLLER = "https://controller.invalid"  # nothing enrolls through it: certified here


@dataclass(frozen=True)
class LabAmphora:
    id: str
    host: str  # the lab host it runs on: h1, h2, ...
    host_id: str  # the name in the host's certificate
    mgmt_ns: str  # the host's own stack: agent and BGP speaker
    haproxy_ns: str  # made by the agent: front end, VIPs, HAProxy
    mgmt_ip4: str
    mgmt_ip6: str
    frontend_ip4: str
    frontend_ip6: str
    speaker_driver: str
    created: float

    @property
    def lab_host(self) -> LabHost:
        return hosts.get(self.host)

    @property
    def dir(self) -> Path:
        return HOSTS_DIR / self.host

    @property
    def state_dir(self) -> Path:
        """The amphora's state on its host (speaker, HAProxy, registrations)."""
        return self.dir / "state" / "amphora"

    @property
    def agent_config_path(self) -> Path:
        """The amphora's configuration as the host's agent built it (0600)."""
        return self.state_dir / AMPHORA_CONFIG

    @property
    def agent_url(self) -> str:
        return f"https://{self.mgmt_ip4}:{AGENT_PORT}"

    def frontend_ip(self, version: int) -> str:
        return self.frontend_ip4 if version == 4 else self.frontend_ip6

    def mgmt_ip(self, version: int) -> str:
        return self.mgmt_ip4 if version == 4 else self.mgmt_ip6

    def client(self, timeout: float = 10.0) -> AgentClient:
        """A client with the controller's certificate (the configured local CA)."""
        context = client_context(configured_ca().directory)
        return AgentClient(self.host_id, self.mgmt_ip4, context, timeout=timeout)


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


def _claim_index() -> int:
    """A free lab host number; its directory is the claim (atomic, across processes)."""
    HOSTS_DIR.mkdir(parents=True, exist_ok=True)
    for index in range(1, MAX_HOSTS + 1):
        with contextlib.suppress(FileExistsError):
            (HOSTS_DIR / f"h{index}").mkdir()
            return index
    raise RuntimeError(f"every one of the lab's {MAX_HOSTS} host slots is taken")


def certify(host: LabHost) -> str:
    """What enrollment gives a host, with the configured local CA signing: the key made on the
    host by the agent's code, a signing request for it, the certificate named by a new host id
    and the CA, kept by the agent's own ``install``. Returns the host id."""
    config = host_config.load(host.config_path)
    key = enroll.host_key(config.key_path)
    ca = configured_ca()
    host_id = str(uuid.uuid4())
    certificate = ca.sign_host(enroll.signing_request(key, config.hostname).encode(), host_id)
    answer = EnrollResponse(
        host_id=host_id,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        ca_pem=ca.ca_pem.decode(),
    )
    enroll.install(config, key, answer)
    return host_id


def create(
    cfg: LabConfig | None = None,
    speaker_driver: str = "bird",
    speakers: list[BgpSpeakerConfig] | None = None,
    amphora_id: str | None = None,
    heartbeat: HeartbeatConfig | None = None,
    anycast_prefixes: list[IPNetwork] | None = None,
    add_path: bool = False,
    service_type: ServiceType = "loadbalancer",
    nexthop_bfd: NexthopBfd | None = None,
    fence_after: float | None = None,
) -> LabAmphora:
    """An amphora on a new lab host, its front end plugged and its agent answering.

    Heartbeats go where the configuration says (the health manager). anycast_prefixes are the
    pools it may announce in; None means the lab's anycast pools, an empty list an amphora that
    announces nothing. Its speakers default to one per IP version peering with the ToR (BFD
    with BIRD; ExaBGP has none, lab notes trap 4)."""
    cfg = cfg or LabConfig()
    amphora_id = amphora_id or str(uuid.uuid4())
    AMPHORAE_DIR.joinpath(amphora_id).mkdir(parents=True, exist_ok=True)
    index = _claim_index()
    # Recorded first, so delete() finds a half-made amphora.
    _meta_path(amphora_id).write_text(json.dumps({"id": amphora_id, "host": f"h{index}"}))
    try:
        host = hosts.create(cfg, index, NO_CONTROLLER, claimed=True)
        host_id = certify(host)
        hosts.start_agent(host)
        networks = fabric.network_driver()
        port = networks.create_port(
            stable_id(cfg.frontend.name), None, None, amphora_id, OWNER_FRONTEND
        )
        by_version = {
            ipaddress.ip_address(f.ip_address).version: f.ip_address for f in port.fixed_ips
        }
        amp = LabAmphora(
            id=amphora_id,
            host=host.name,
            host_id=host_id,
            mgmt_ns=host.namespace,
            haproxy_ns=host.haproxy_namespace,
            mgmt_ip4=host.mgmt_ip4,
            mgmt_ip6=host.mgmt_ip6,
            frontend_ip4=by_version[4],
            frontend_ip6=by_version[6],
            speaker_driver=speaker_driver,
            created=time.time(),
        )
        _meta_path(amphora_id).write_text(json.dumps(amp.__dict__))
        chosen = default_peers(cfg, bfd=speaker_driver == "bird") if speakers is None else speakers
        assignment = AmphoraAssignment(
            amphora_id=amphora_id,
            bgp=BgpConfig(
                driver=speaker_driver,
                router_id=ipaddress.IPv4Address(host.mgmt_ip4),
                speakers=chosen,
                add_path=add_path,
                nexthop_bfd=nexthop_bfd,
            ),
            service_type=service_type,
            fence_after=fence_after,
            anycast_prefixes=[cfg.anycast_v4, cfg.anycast_v6]
            if anycast_prefixes is None
            else list(anycast_prefixes),
            heartbeat=heartbeat or heartbeat_settings(controller_config.load()),
        )
        with amp.client(timeout=ASSIGN_TIMEOUT) as client:
            client.assign_amphora(assignment)
            client.plug_frontend(frontend_plug(networks, port.id))
    except BaseException:
        delete(amphora_id)
        raise
    return amp


def create_many(cfg: LabConfig, speaker_driver: str, count: int) -> list[LabAmphora]:
    """count amphorae, created in parallel (each agent start takes most of a second)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: create(cfg, speaker_driver), range(count)))


def start_agent(amp: LabAmphora) -> None:
    """Start the host's agent again; it resumes the amphora it holds, and answers."""
    hosts.start_agent(amp.lab_host)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(AgentUnreachable), amp.client(timeout=1) as client:
            if client.host_amphora().get("running"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"the agent of amphora {amp.id} did not resume it")


def stop_agent(amp: LabAmphora) -> None:
    """Stop the agent gracefully (it stops its speaker and HAProxy, keeps the assignment)."""
    hosts.stop_agent(amp.lab_host)


def signal_processes(amphora_id: str, sig: signal.Signals) -> int:
    """Send sig to every process in the amphora's namespaces (SIGSTOP: a frozen amphora, as a
    hung machine; SIGCONT: thawed). Returns how many got it."""
    amp = get(amphora_id)
    count = 0
    for ns in (amp.mgmt_ns, amp.haproxy_ns):
        for pid in plumbing.namespace_pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                count += 1
    return count


def cut_off(amphora_id: str, cut: bool = True) -> None:
    """A dead amphora's front end: every IP packet into its amphora-haproxy namespace dropped
    (with SIGSTOP alone its kernel still ACKs what reaches its sockets), or back again."""
    script = "table inet l3dist_dead\ndelete table inet l3dist_dead\n"
    if cut:
        script += (
            "table inet l3dist_dead {\n  chain prerouting {\n"
            "    type filter hook prerouting priority -500; policy drop;\n  }\n}\n"
        )
    subprocess.run(["ip", "netns", "exec", get(amphora_id).haproxy_ns, "nft", "-f", "-"],
                   input=script, text=True, check=True, capture_output=True)  # fmt: skip


def delete(amphora_id: str) -> None:
    """Remove an amphora completely (its host with every process and link, its front-end
    port's reservation, files); safe to repeat and after a crash."""
    try:
        names = json.loads(_meta_path(amphora_id).read_text())
    except (FileNotFoundError, ValueError):
        return
    with contextlib.suppress(KeyError):
        hosts.delete(hosts.get(names["host"]))
    shutil.rmtree(HOSTS_DIR / names["host"], ignore_errors=True)  # a claim with no host yet
    networks = fabric.network_driver()
    for port in networks.ports_of(amphora_id):
        networks.delete_port(port.id)
    shutil.rmtree(AMPHORAE_DIR / amphora_id, ignore_errors=True)
