"""The compute driver: where amphorae run (Octavia's compute driver, reduced to what the flows
use). build() returns once the amphora's agent answers or raises, leaving nothing behind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from l3dist.certificates import AmphoraCertificates
from l3dist.contracts.agent_config import BgpSpeakerConfig, HeartbeatConfig, IPNetwork, NexthopBfd


class ComputeBuildError(Exception):
    """build() could not make the amphora (nothing is left behind); the message says why."""


@dataclass(frozen=True)
class BuiltAmphora:
    compute_id: str
    lb_network_ip: str  # where the controller reaches the agent (management network)


@dataclass(frozen=True)
class DistributorRole:
    """A dedicated distributor amphora (not a load-balancing one): it runs only the speakers,
    with ADD-PATH, watching the next hops it announces by BFD with these timers."""

    nexthop_bfd: NexthopBfd


class AbstractComputeDriver(ABC):
    @abstractmethod
    def build(
        self,
        amphora_id: str,
        speakers: list[BgpSpeakerConfig],
        speaker_driver: str,
        certificates: AmphoraCertificates,
        heartbeat: HeartbeatConfig,
        anycast_prefixes: list[IPNetwork],
        distributor: DistributorRole | None = None,
    ) -> BuiltAmphora:
        """Create and boot an amphora whose config drive carries the BGP speakers, its TLS
        certificates (the agent's own, and the CA of the controller's client certificate),
        where to send its heartbeats, and the anycast pools it may announce host routes inside
        (``AgentConfig.anycast_prefixes``: written as given, an empty list makes an amphora
        that announces nothing). With ``distributor``, a dedicated distributor amphora."""

    @abstractmethod
    def delete(self, compute_id: str) -> None:
        """Remove the amphora and everything it holds; absent is fine."""
