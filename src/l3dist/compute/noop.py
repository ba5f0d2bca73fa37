"""The noop compute driver: records amphorae without running anything (API-level tests)."""

from __future__ import annotations

import threading

from l3dist.certificates import AmphoraCertificates
from l3dist.compute.base import AbstractComputeDriver, BuiltAmphora, DistributorRole
from l3dist.contracts.agent_config import BgpSpeakerConfig, HeartbeatConfig, IPNetwork


class NoopComputeDriver(AbstractComputeDriver):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.amphorae: dict[str, list[BgpSpeakerConfig]] = {}
        self.anycast_prefixes: dict[str, list[IPNetwork]] = {}  # what each would announce in

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
        with self.lock:
            self.amphorae[amphora_id] = speakers
            self.anycast_prefixes[amphora_id] = list(anycast_prefixes)
        return BuiltAmphora(compute_id=amphora_id, lb_network_ip="127.0.0.1")

    def delete(self, compute_id: str) -> None:
        with self.lock:
            self.amphorae.pop(compute_id, None)
            self.anycast_prefixes.pop(compute_id, None)


def from_database(db: object, config: object) -> NoopComputeDriver:
    """The entry point's factory: the noop driver keeps nothing in the database."""
    return NoopComputeDriver()
