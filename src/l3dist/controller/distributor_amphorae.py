"""A dedicated distributor's amphorae (spec P2): built when the distributor is created, deleted
with it.

A distributor in ``dedicated`` mode (``distributor.l3_bgp_config``) runs K distributor amphorae
on hosts of the pool (``service_type`` distributor, ``distributor_id`` set, no load balancer):
they hold the only BGP sessions with the fabric, with the distributor's speakers and peer
profiles, and announce every load-balancing amphora of its load balancers with ADD-PATH
(``distributor.l3_bgp``). Each gets a port on the front-end network of the load balancers it
serves (the distributor's ``frontend_subnet``'s network, else the operator's front-end
network), plugged in its own namespace, so it watches the next hops by single-hop BFD.

These are compute and network work, so they are the controller's tasks around the distributor
driver's subflows (the driver layer does not reach compute or network drivers).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from l3dist.common import constants as c
from l3dist.common.parallel import each
from l3dist.compute.base import DistributorRole
from l3dist.contracts.agent_config import BgpSpeakerConfig
from l3dist.controller.services import Services
from l3dist.controller.tasks import ServiceTask, build_amphora
from l3dist.db.models import (
    Amphora,
    AmphoraBgpSpeakerRegistration,
    AmphoraHealth,
    AmphoraRegistration,
    AmphoraVipRegistration,
    Distributor,
)
from l3dist.distributor import l3_bgp_config
from l3dist.distributor.l3_bgp import speaker_configs
from l3dist.network.exceptions import NetworkException
from l3dist.network.frontend import frontend_plug
from l3dist.network.models import ROLE_FRONTEND
from l3dist.network.roles import announceable_prefixes, subnets_with_role

log = logging.getLogger(__name__)
DISTRIBUTOR_AMPHORA_NAMESPACE = uuid.UUID("5d1f0c52-3f0e-4b8e-9d43-2b7a51c0d6e4")
SESSIONS_TIMEOUT = 60.0  # for a new distributor amphora's BGP sessions to come up


def amphora_id_for(job_id: str, name: str) -> str:
    """A distributor amphora's id, from the job that makes it: a resumed flow finds it."""
    return str(uuid.uuid5(DISTRIBUTOR_AMPHORA_NAMESPACE, f"{job_id}/{name}"))


def frontend_network(services: Services, frontend_subnet: str | None) -> str:
    """The network the distributor amphorae get a port on: the distributor's front-end
    subnet's, else the operator's front-end network (the first front-end subnet by name)."""
    network = services.network
    if frontend_subnet:
        return network.get_subnet(frontend_subnet).network_id
    candidates = sorted(
        subnets_with_role(network, ROLE_FRONTEND),
        key=lambda subnet: (subnet.ip_version, subnet.name or subnet.id),
    )
    if not candidates:
        raise NetworkException("there is no front-end subnet for the distributor amphorae")
    return candidates[0].network_id


@dataclass(frozen=True)
class BuildPlan:
    """What every distributor amphora of a distributor is built with."""

    speakers: list[BgpSpeakerConfig]
    prefixes: list[Any]
    role: DistributorRole
    network_id: str


def prepare(services: Services, distributor_id: str, ids: list[str]) -> BuildPlan:
    """The amphora rows (PENDING_CREATE, kept when there: a resumed flow) and what they are
    built with."""
    with services.db.session(writer=True) as session:
        distributor = session.get(Distributor, distributor_id)
        assert distributor is not None
        timers = l3_bgp_config.nexthop_bfd(distributor.config_data)
        speakers = speaker_configs(session, distributor_id)
        frontend_subnet = distributor.frontend_subnet
        for amphora_id in ids:
            if session.get(Amphora, amphora_id) is None:
                session.add(
                    Amphora(
                        id=amphora_id,
                        status=c.PENDING_CREATE,
                        service_type=c.SERVICE_DISTRIBUTOR,
                        distributor_id=distributor_id,
                    )
                )
    # The network driver keeps its own records: asked outside that transaction.
    network_id = frontend_network(services, frontend_subnet)
    prefixes = announceable_prefixes(services.network)
    return BuildPlan(speakers, prefixes, DistributorRole(nexthop_bfd=timers), network_id)


def build_one(services: Services, plan: BuildPlan, amphora_id: str) -> None:
    """One distributor amphora built, its front end plugged, its sessions Established, then
    ALLOCATED with its port and speakers recorded."""
    built = build_amphora(services, amphora_id, plan.speakers, plan.prefixes, plan.role)
    port = services.network.plug_network(amphora_id, plan.network_id)
    with services.agent(amphora_id, built.lb_network_ip) as client:
        client.plug_frontend(frontend_plug(services.network, port.id))
        _wait_established(client, amphora_id)
    with services.db.session(writer=True) as session:
        amp = session.get(Amphora, amphora_id)
        assert amp is not None
        first = next((f for f in port.fixed_ips if ":" not in f.ip_address), port.fixed_ips[0])
        amp.frontend_port_id = port.id
        amp.frontend_ip, amp.frontend_subnet_id = first.ip_address, first.subnet_id
        amp.status = c.AMPHORA_ALLOCATED
        for speaker in plan.speakers:
            if session.get(AmphoraBgpSpeakerRegistration, (speaker.id, amphora_id)) is None:
                session.add(
                    AmphoraBgpSpeakerRegistration(
                        distributor_l3_bgp_speaker_id=speaker.id, amphora_id=amphora_id
                    )
                )


class BuildDistributorAmphorae(ServiceTask):
    """K distributor amphorae, built in parallel, each with its front end plugged and its BGP
    sessions Established before the distributor is ACTIVE. Their ids come from the job, so a
    resumed flow finds the same ones (a half-built one is built again). Combined mode: none."""

    def execute(self, distributor_id: str, job_id: str) -> list[str]:
        with self.services.db.session(writer=False) as session:
            distributor = session.get(Distributor, distributor_id)
            assert distributor is not None
            count = l3_bgp_config.distributor_amphorae(distributor.config_data)
        if not count:
            return []
        ids = [amphora_id_for(job_id, str(i)) for i in range(count)]
        plan = prepare(self.services, distributor_id, ids)
        each(lambda amphora_id: build_one(self.services, plan, amphora_id), ids)
        log.info("distributor %s runs on amphorae %s", distributor_id, ", ".join(ids))
        return ids

    def revert(self, distributor_id: str, **_: Any) -> None:
        _delete(self.services, distributor_id)


def _wait_established(client: Any, amphora_id: str) -> None:
    deadline = time.monotonic() + SESSIONS_TIMEOUT
    while True:
        peers = client.bgp_status()["peers"]
        if peers and all(p["established"] for p in peers):
            return
        if time.monotonic() > deadline:
            states = ", ".join(f"{p['peer_id']} {p['state']}" for p in peers) or "no peer"
            raise TimeoutError(
                f"distributor amphora {amphora_id}: BGP sessions not established after "
                f"{SESSIONS_TIMEOUT:.0f} s ({states})"
            )
        time.sleep(0.2)


def _delete(services: Services, distributor_id: str) -> None:
    """Every amphora of the distributor removed."""
    with services.db.session(writer=True) as session:
        rows = session.scalars(select(Amphora).where(Amphora.distributor_id == distributor_id))
        ids = [a.id for a in rows if a.status != c.DELETED]
    delete_amphorae(services, ids)


def delete_amphorae(services: Services, ids: list[str]) -> None:
    """Distributor amphorae removed: host reset (its sessions close; a host that does not
    answer is left out of the pool), port released, their rows (registrations, paths,
    speakers, health) gone, marked DELETED."""

    def remove(amphora_id: str) -> None:
        services.compute.delete(amphora_id)
        for port in services.network.get_plugged_networks(amphora_id):
            try:
                services.network.unplug_network(amphora_id, port.network_id)
            except NetworkException as exc:
                log.warning("distributor amphora %s: port not released: %s", amphora_id, exc)

    each(remove, ids)
    with services.db.session(writer=True) as session:
        for amp in session.scalars(select(Amphora).where(Amphora.id.in_(ids))):
            amp.status = c.DELETED
        for model, column in (
            (AmphoraHealth, AmphoraHealth.amphora_id),
            (AmphoraBgpSpeakerRegistration, AmphoraBgpSpeakerRegistration.amphora_id),
            (AmphoraVipRegistration, AmphoraVipRegistration.amphora_id),
            (AmphoraRegistration, AmphoraRegistration.amphora_id),
        ):
            session.execute(delete(model).where(column.in_(ids)))


class DeleteDistributorAmphorae(ServiceTask):
    def execute(self, distributor_id: str) -> None:
        _delete(self.services, distributor_id)


class DeleteDistributorRow(ServiceTask):
    """The distributor's row goes last, once nothing of it runs."""

    def execute(self, distributor_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            distributor = session.get(Distributor, distributor_id)
            if distributor is not None:
                session.delete(distributor)
