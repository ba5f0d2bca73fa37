"""What the controller's tasks work with: the database and the drivers, chosen by configuration.

Tasks get this object when their flow is built; it is never persisted, so a resumed flow runs
with the services of the worker that resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from l3dist.amphora_client import AgentClient
from l3dist.certificates import LocalCA, client_context
from l3dist.compute.base import AbstractComputeDriver
from l3dist.contracts.agent_config import HeartbeatConfig
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
    speaker_driver: str = "bird"  # the BGP speaker the amphorae run (bird or exabgp)
    drain_timeout: float = 60.0  # seconds a drained amphora keeps its connections at most

    def agent(
        self, amphora_id: str, lb_network_ip: str | None, timeout: float = 10.0
    ) -> AgentClient:
        """A client of the amphora's agent (mutual TLS, the agent's name checked)."""
        context = client_context(self.ca.directory)
        return AgentClient(amphora_id, str(lb_network_ip), context, timeout=timeout)
