"""The lab compute driver: an amphora is the two namespaces of ``l3dist_lab.amphora`` (default
and amphora-haproxy) with the agent, HAProxy and BGP speaker started from a config-drive file;
its management port comes from the lab network driver, its front-end port from plug_vip."""

from __future__ import annotations

from l3dist.certificates import AmphoraCertificates
from l3dist.compute.base import AbstractComputeDriver, BuiltAmphora
from l3dist.contracts.agent_config import BgpSpeakerConfig, HeartbeatConfig, IPNetwork
from l3dist_lab import amphora as lab_amphora
from l3dist_lab.config import LabConfig


class LabComputeDriver(AbstractComputeDriver):
    def __init__(self, cfg: LabConfig | None = None) -> None:
        self.cfg = cfg or LabConfig()

    def build(
        self,
        amphora_id: str,
        speakers: list[BgpSpeakerConfig],
        speaker_driver: str,
        certificates: AmphoraCertificates,
        heartbeat: HeartbeatConfig,
        anycast_prefixes: list[IPNetwork],
    ) -> BuiltAmphora:
        amp = lab_amphora.create(
            self.cfg,
            speaker_driver,
            speakers,
            amphora_id=amphora_id,
            frontend=False,
            certificates=certificates,
            heartbeat=heartbeat,
            anycast_prefixes=anycast_prefixes,
        )
        return BuiltAmphora(compute_id=amp.id, lb_network_ip=amp.mgmt_ip4)

    def delete(self, compute_id: str) -> None:
        lab_amphora.delete(compute_id)


def from_database(db: object, config: object) -> LabComputeDriver:
    """The entry point's factory: lab amphorae keep their state in the lab's own files."""
    return LabComputeDriver()
