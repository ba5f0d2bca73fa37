"""What the controller's tasks work with: the database and the drivers, chosen by configuration.

Tasks get this object when their flow is built; it is never persisted, so a resumed flow runs
with the services of the worker that resumes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from l3dist.amphora_client import AgentClient
from l3dist.compute.base import AbstractComputeDriver
from l3dist.db.session import Database
from l3dist.network.base import AbstractNetworkDriver

if TYPE_CHECKING:
    from l3dist.distributor.base import AbstractDistributorDriver

AGENT_PORT = 9443


@dataclass
class Services:
    db: Database
    network: AbstractNetworkDriver
    compute: AbstractComputeDriver
    distributor: AbstractDistributorDriver
    agent_client: Callable[[str], AgentClient]
    speaker_driver: str = "bird"  # the BGP speaker the amphorae run (bird or exabgp)

    def agent(self, lb_network_ip: str) -> AgentClient:
        return self.agent_client(lb_network_ip)


def plain_agent_client(lb_network_ip: str) -> AgentClient:
    return AgentClient(f"http://{lb_network_ip}:{AGENT_PORT}")
