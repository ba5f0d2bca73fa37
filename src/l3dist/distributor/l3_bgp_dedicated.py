"""The L3_BGP driver's dedicated mode: the distributor amphorae announce the load-balancing
amphorae.

In dedicated mode (``l3_bgp_config``) the load-balancing amphorae run no BGP speaker. Register
Amphora goes to every distributor amphora of the distributor, naming the load-balancing
amphora and its front end as the next hop (each distributor sends it as one more ADD-PATH
path), and the load-balancing amphora is told to answer those distributors' BFD
(``PUT /1.0/bfd``), which is how they watch it. The registration tables record it the spec's
way: ``distributor_l3_amphora_vip_registration.amphora_id`` is the distributor amphora that
announces, ``nexthop_ip`` the load-balancing amphora's front end; ``amphora_registration`` has
both the load-balancing amphora and the distributor amphorae for the load balancer.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from l3dist.amphora_client import AgentClientError
from l3dist.common import constants as c
from l3dist.contracts.agent_api import BfdPeers
from l3dist.contracts.agent_config import BgpSpeakerConfig
from l3dist.db.models import Amphora, AmphoraRegistration, AmphoraVipRegistration, Distributor
from l3dist.distributor import l3_bgp_config
from l3dist.distributor.base import DistributorServices

log = logging.getLogger(__name__)
TIMEOUT = 3.0  # a distributor amphora that does not answer must not hold a flow


@dataclass(frozen=True)
class Speaker:
    """A distributor amphora: where its agent answers."""

    amphora_id: str
    lb_network_ip: str


def is_dedicated(session: Session, distributor_id: str | None) -> bool:
    distributor = session.get(Distributor, distributor_id) if distributor_id else None
    return distributor is not None and l3_bgp_config.mode(distributor.config_data) == (
        l3_bgp_config.DEDICATED
    )


def distributor_amphorae(session: Session, distributor_id: str) -> list[Speaker]:
    """The distributor's amphorae that are built (ALLOCATED), oldest first."""
    rows = session.scalars(
        select(Amphora)
        .where(
            Amphora.distributor_id == distributor_id,
            Amphora.service_type == c.SERVICE_DISTRIBUTOR,
            Amphora.status == c.AMPHORA_ALLOCATED,
        )
        .order_by(Amphora.created_at)
    ).all()
    return [Speaker(a.id, a.lb_network_ip) for a in rows if a.lb_network_ip]


def bfd_peers(
    services: DistributorServices, speakers: list[Speaker], timers: Any, version: int
) -> BfdPeers:
    """The distributor amphorae's front-end addresses of the VIP's family, as their agents
    have them: what a load-balancing amphora answers BFD from (they watch its next hop of
    that family)."""
    addresses: list[Any] = []
    for speaker in speakers:
        with services.agent(speaker.amphora_id, speaker.lb_network_ip, TIMEOUT) as client:
            found = [ipaddress.ip_address(a) for a in client.info()["frontend_addresses"]]
            addresses += [a for a in found if a.version == version]
    return BfdPeers(peers=sorted(set(addresses), key=lambda a: (a.version, a)), timers=timers)


def register(
    services: DistributorServices,
    distributor_id: str,
    vip: str,
    targets: list[Any],
) -> list[Speaker]:
    """The load-balancing amphorae (targets: amphora_id, lb_network_ip, nexthop_ip) get the VIP
    on loopback and answer the distributors' BFD; then every distributor amphora announces
    each of them. A repeated call (a resumed flow) finds them registered and goes on."""
    with services.db.session(writer=False) as session:
        distributor = session.get(Distributor, distributor_id)
        assert distributor is not None
        timers = l3_bgp_config.nexthop_bfd(distributor.config_data)
        speakers = distributor_amphorae(session, distributor_id)
    if not speakers:
        raise RuntimeError(f"distributor {distributor_id} has no distributor amphora running")
    answer = bfd_peers(services, speakers, timers, ipaddress.ip_address(vip).version)
    for target in targets:
        with services.agent(target.amphora_id, target.lb_network_ip) as client:
            client.plug_vip(vip)
            client.set_bfd_peers(answer)
    for speaker in speakers:
        announce(services, speaker, vip, targets)
    return speakers


def announce(services: DistributorServices, speaker: Speaker, vip: str, targets: list[Any]) -> None:
    """One distributor amphora announces each target's next hop for the VIP; one already
    registered (a repeated call) is done."""
    with services.agent(speaker.amphora_id, speaker.lb_network_ip) as client:
        for target in targets:
            try:
                client.register_amphora(target.amphora_id, vip, target.nexthop_ip)
            except AgentClientError as exc:
                if not (exc.status == 409 and "already registered" in exc.message):
                    raise


def record(
    session: Session,
    speakers: list[Speaker],
    loadbalancer_id: str,
    distributor_id: str,
    nexthop_ip: str,
    peers: list[BgpSpeakerConfig],
    version: int,
) -> None:
    """Each distributor amphora announces nexthop_ip for the load balancer, to each peer of
    the VIP's family."""
    for speaker in speakers:
        forget_path(session, speaker.amphora_id, loadbalancer_id, nexthop_ip)
        if session.get(AmphoraRegistration, (speaker.amphora_id, loadbalancer_id)) is None:
            session.add(
                AmphoraRegistration(
                    amphora_id=speaker.amphora_id,
                    load_balancer_id=loadbalancer_id,
                    distributor_id=distributor_id,
                )
            )
        add_paths(session, speaker.amphora_id, loadbalancer_id, nexthop_ip, peers, version)
    session.flush()


def add_paths(
    session: Session,
    announcer_id: str,
    loadbalancer_id: str,
    nexthop_ip: str,
    speakers: list[BgpSpeakerConfig],
    version: int,
) -> None:
    """The spec's vip registration rows: announcer_id (the amphora whose speaker sends it: the
    load-balancing amphora itself in combined mode, a distributor amphora in dedicated mode)
    announces nexthop_ip for the load balancer to each peer of the VIP's family."""
    for bgp_speaker in speakers:
        if bgp_speaker.ip_version != version:
            continue
        for peer in bgp_speaker.peers:
            session.add(
                AmphoraVipRegistration(
                    amphora_id=announcer_id,
                    load_balancer_id=loadbalancer_id,
                    nexthop_ip=nexthop_ip,
                    distributor_l3_bgp_peer_id=peer.id,
                )
            )


def forget_path(session: Session, speaker_id: str, loadbalancer_id: str, nexthop_ip: str) -> None:
    session.execute(
        delete(AmphoraVipRegistration).where(
            AmphoraVipRegistration.amphora_id == speaker_id,
            AmphoraVipRegistration.load_balancer_id == loadbalancer_id,
            AmphoraVipRegistration.nexthop_ip == nexthop_ip,
        )
    )
    session.flush()
    left = session.scalar(
        select(AmphoraVipRegistration.amphora_id).where(
            AmphoraVipRegistration.amphora_id == speaker_id,
            AmphoraVipRegistration.load_balancer_id == loadbalancer_id,
        )
    )
    if left is None:  # its last path for the load balancer: no longer registered to it
        session.execute(
            delete(AmphoraRegistration).where(
                AmphoraRegistration.amphora_id == speaker_id,
                AmphoraRegistration.load_balancer_id == loadbalancer_id,
            )
        )


def withdraw(
    services: DistributorServices,
    distributor_id: str,
    loadbalancer_id: str,
    vip: str,
    targets: list[Any],
    drain: bool = False,
    forget: bool = True,
) -> None:
    """Every distributor amphora stops announcing the targets (drain: the same, the VIP stays
    on the targets' loopback for their established connections); then, unless draining, the
    VIP leaves their loopback and (forget) their paths' records go (a floating IP unbound
    keeps the records: the VIP's paths stay). What is not registered, or does not answer, is
    skipped: a dead distributor's routes went with its sessions."""
    with services.db.session(writer=False) as session:
        speakers = distributor_amphorae(session, distributor_id)
    for speaker in speakers:
        try:
            with services.agent(speaker.amphora_id, speaker.lb_network_ip, TIMEOUT) as client:
                for target in targets:
                    try:
                        if drain:
                            client.drain_amphora(target.amphora_id, vip, target.nexthop_ip)
                        else:
                            client.unregister_amphora(target.amphora_id, vip, target.nexthop_ip)
                    except AgentClientError as exc:
                        if exc.status != 404:
                            raise
        except OSError as exc:
            log.warning("distributor amphora %s unreachable: %s", speaker.amphora_id, exc)
    if drain:
        return
    for target in targets:
        try:
            with services.agent(target.amphora_id, target.lb_network_ip, TIMEOUT) as client:
                client.unplug_vip(vip)
        except AgentClientError as exc:
            if exc.status not in (404, 409):
                raise
        except OSError:
            pass  # gone: nothing to take off its loopback
    if not forget:
        return
    with services.db.session(writer=True) as session:
        for speaker in speakers:
            for target in targets:
                forget_path(session, speaker.amphora_id, loadbalancer_id, target.nexthop_ip)


def connections(services: DistributorServices, target: Any, vip: str) -> int:
    """A load-balancing amphora's client connections to the VIP (what a drain waits for)."""
    with services.agent(target.amphora_id, target.lb_network_ip, TIMEOUT) as client:
        return int(client.info().get("connections", {}).get(vip, 0))
