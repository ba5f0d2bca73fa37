"""What the controller's tasks work with: the database and the drivers, chosen by configuration.

Tasks get this object when their flow is built; it is never persisted, so a resumed flow runs
with the services of the worker that resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from l3dist.amphora_client import AgentClient
from l3dist.amphora_client.driver import AmphoraDriver
from l3dist.certificates import LocalCA
from l3dist.compute.base import AbstractComputeDriver
from l3dist.contracts.agent_api import AGENT_PORT
from l3dist.contracts.agent_config import HeartbeatConfig
from l3dist.db.models import Amphora, AmphoraHost
from l3dist.db.session import Database
from l3dist.network.base import AbstractNetworkDriver

if TYPE_CHECKING:
    from l3dist.distributor.base import AbstractDistributorDriver


@dataclass
class Services:
    db: Database
    network: AbstractNetworkDriver
    compute: AbstractComputeDriver
    distributor: AbstractDistributorDriver
    ca: LocalCA  # issues amphora certificates; its controller certificate talks to agents
    heartbeat: HeartbeatConfig  # where the amphorae send heartbeats, with the key
    amphora: AmphoraDriver  # how agents are reached (rest: HTTPS, mutual TLS)
    speaker_driver: str = "bird"  # the BGP speaker the amphorae run (bird or exabgp)
    drain_timeout: float = 60.0  # seconds a drained amphora keeps its connections at most

    def agent(
        self, amphora_id: str, lb_network_ip: str | None, timeout: float = 10.0
    ) -> AgentClient:
        """A client of the amphora's agent (mutual TLS, the agent's name checked). The name
        is its compute id: the amphora id for a made amphora, the host id for an enrolled
        host (whose certificate was issued to it then), whose agent port is the host's."""
        name, port = amphora_id, AGENT_PORT
        with self.db.session() as session:
            compute_id = session.scalar(select(Amphora.compute_id).where(Amphora.id == amphora_id))
            if compute_id:
                name = compute_id
                host_port = session.scalar(
                    select(AmphoraHost.agent_port).where(AmphoraHost.id == compute_id)
                )
                port = host_port or port
        return self.amphora.client(name, str(lb_network_ip), port, timeout)
