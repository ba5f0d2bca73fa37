"""The ``hosts`` compute driver: amphorae run on the operator's pre-provisioned hosts.

Hosts (VMs or bare metal running ``l3dist-agent``) enroll into a pool
(``/v2/octavia/amphora-hosts``). ``build()`` claims a free, enabled host in one transaction
(two workers never claim the same one, ``l3dist.db.hosts.claim``) and tells its agent which
amphora it now is, through the agent API (``PUT /1.0/amphora``): speakers and peers, heartbeat
targets, anycast prefixes. ``delete()`` resets the host through the agent (every route
withdrawn, HAProxy stopped, VIPs, front end and flow-rescue rules removed, state cleared),
checks that the agent says so, and puts the host back in the pool.

A host that does not answer is marked UNREACHABLE and skipped (the next free host is tried);
it is never offered again until it has been reset. No free host: ``NoFreeHost`` (a
``ComputeBuildError``) whose message counts the pool, and nothing is left claimed.

The agent's TLS certificate is named by the host id (issued at enrollment); the controller
checks that name, so an address taken over by another machine is never trusted.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import time
import uuid
from typing import Any

from l3dist.amphora_client import AgentClient, AgentClientError, AgentUnreachable
from l3dist.certificates import AmphoraCertificates, client_context
from l3dist.common.config import Config
from l3dist.compute.base import (
    AbstractComputeDriver,
    BuiltAmphora,
    ComputeBuildError,
    DistributorRole,
)
from l3dist.contracts.agent_api import AmphoraAssignment
from l3dist.contracts.agent_config import (
    BgpConfig,
    BgpSpeakerConfig,
    HeartbeatConfig,
    IPNetwork,
)
from l3dist.db import hosts
from l3dist.db.models import AmphoraHost
from l3dist.db.session import Database

log = logging.getLogger(__name__)
# A host that does not answer a reset within this is left UNREACHABLE (a frozen or cut-off
# host must not hold up the failover that replaced it; it fenced itself anyway).
RESET_TIMEOUT = 10.0
ROUTER_ID_NAMESPACE = uuid.UUID("5d0c3b8e-7f5c-4f0b-9a43-0d7f2b1c6e21")


class NoFreeHost(ComputeBuildError):
    """Every host is allocated, unreachable, disabled or not enrolled."""


def router_id(host: AmphoraHost) -> str:
    """The BGP router id: the host's IPv4 management address, or (IPv6-only management) a
    stable non-zero 32-bit id derived from the host id."""
    address = ipaddress.ip_address(host.management_address or "::")
    if address.version == 4:
        return str(address)
    raw = uuid.uuid5(ROUTER_ID_NAMESPACE, host.id).int & 0xFFFFFFFF
    return str(ipaddress.IPv4Address(raw or 1))


class HostsComputeDriver(AbstractComputeDriver):
    def __init__(
        self, db: Database, ca_dir: Any, fence_after: float | None, timeout: float = 30.0
    ) -> None:
        self.db = db
        self.ca_dir = ca_dir
        self.fence_after = fence_after  # the agents fence themselves after this (fencing.py)
        self.timeout = timeout

    def _context(self) -> ssl.SSLContext:
        return client_context(self.ca_dir)

    def _client(self, host_id: str, address: str, port: int) -> AgentClient:
        return AgentClient(host_id, address, self._context(), timeout=self.timeout, port=port)

    def build(
        self,
        amphora_id: str,
        speakers: list[BgpSpeakerConfig],
        speaker_driver: str,
        certificates: AmphoraCertificates,  # unused: a host's certificate comes at enrollment
        heartbeat: HeartbeatConfig,
        anycast_prefixes: list[IPNetwork],
        distributor: DistributorRole | None = None,
    ) -> BuiltAmphora:
        skipped: set[str] = set()
        while True:
            try:
                with self.db.session(writer=True) as session:
                    host = hosts.claim(session, amphora_id, frozenset(skipped))
                    host_id = host.id
                    address = str(host.management_address)
                    port = host.agent_port
                    bgp = BgpConfig(
                        driver=speaker_driver,
                        router_id=ipaddress.IPv4Address(router_id(host)),
                        speakers=speakers,
                        add_path=distributor is not None,
                        nexthop_bfd=distributor.nexthop_bfd if distributor else None,
                    )
            except hosts.NoFreeHost as exc:
                raise NoFreeHost(str(exc)) from None
            assignment = AmphoraAssignment(
                amphora_id=amphora_id,
                service_type="distributor" if distributor else "loadbalancer",
                bgp=bgp,
                anycast_prefixes=anycast_prefixes,
                heartbeat=heartbeat,
                fence_after=self.fence_after,
            )
            try:
                with self._client(host_id, address, port) as client:
                    client.assign_amphora(assignment)
                    self._wait_running(client, amphora_id)
            except (AgentUnreachable, AgentClientError, TimeoutError) as exc:
                log.warning("amphora host %s (%s) refused or did not answer: %s", host_id,
                            address, exc)  # fmt: skip
                with self.db.session(writer=True) as session:
                    hosts.release(session, host_id, hosts.UNREACHABLE)
                skipped.add(host_id)
                continue
            return BuiltAmphora(compute_id=host_id, lb_network_ip=address)

    def _wait_running(self, client: AgentClient, amphora_id: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            state = client.host_amphora()
            if state.get("amphora_id") == amphora_id and state.get("running"):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the agent did not start amphora {amphora_id}: {state}")
            time.sleep(0.1)

    def delete(self, compute_id: str) -> None:
        """Reset the host that holds the amphora (compute_id: the host id, or the amphora id a
        crashed build may have left claimed); absent is fine. A host that cannot be reset
        is left UNREACHABLE, out of the pool."""
        with self.db.session(writer=True) as session:
            host = session.get(AmphoraHost, compute_id) or hosts.holding(session, compute_id)
            if host is None:
                return
            host_id, address, port = host.id, host.management_address, host.agent_port
        status = hosts.UNREACHABLE
        if address:
            try:
                with AgentClient(
                    host_id, address, self._context(), timeout=RESET_TIMEOUT, port=port
                ) as client:
                    client.reset_amphora()
                    if client.host_amphora().get("amphora_id") is None:
                        status = hosts.AVAILABLE
            except (AgentUnreachable, AgentClientError) as exc:
                log.warning("amphora host %s could not be reset: %s", host_id, exc)
        with self.db.session(writer=True) as session:
            hosts.release(session, host_id, status)


def from_database(db: Database, config: Config) -> HostsComputeDriver:
    """The entry point's factory."""
    # A host fences itself whenever the health manager could have failed it over.
    return HostsComputeDriver(db, config.certificates.ca_dir, config.health.heartbeat_timeout)
