"""VIP routes on the L3_BGP fabric: the spec's Register VIP / Unregister VIP (P2) called on every
amphora that runs the distributor's speakers, for anycast routes to next hops that are not
amphorae (a UDP server on the front end, say).

Which amphorae those are comes from one place, ``l3dist.db.queries.speaker_amphorae``. The agents
are called one at a time, as RollSpeakers does: an amphora that refuses stops the task, and its
revert withdraws the route again from the ones already reached. Every call is safe to repeat (a
resumed flow repeats the task that was running): a route already registered (409) counts as
done, one already gone (404) too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from l3dist.amphora_client import AgentClientError
from l3dist.common import constants as c
from l3dist.db.models import (
    Amphora,
    AmphoraBgpSpeakerRegistration,
    Distributor,
    LoadBalancer,
    VipRoute,
)
from l3dist.db.queries import live_vip_routes, speaker_amphorae
from l3dist.distributor.base import DistributorServices, DistributorTask
from l3dist.distributor.l3_bgp_config import DEDICATED, mode, speakers_in_use

log = logging.getLogger(__name__)
# A withdrawal does not wait long for a hung amphora: its routes go with its BGP session.
WITHDRAW_TIMEOUT = 3.0


@dataclass(frozen=True)
class Route:
    """What an agent's Register VIP takes, read from a route row."""

    id: str
    vip_ip: str
    nexthop_ip: str
    peer_id: str | None

    @classmethod
    def of(cls, row: VipRoute) -> Route:
        return cls(row.id, row.vip_ip, row.nexthop_ip, row.distributor_l3_bgp_peer_id)


@dataclass(frozen=True)
class Speaker:
    """An amphora that runs the distributor's speakers: how its agent is reached."""

    amphora_id: str
    lb_network_ip: str

    @classmethod
    def of(cls, amp: Amphora) -> Speaker:
        return cls(amp.id, str(amp.lb_network_ip))


def _route(session: Session, route_id: str) -> tuple[Route, str] | None:
    row = session.get(VipRoute, route_id)
    return None if row is None else (Route.of(row), row.distributor_id)


def _speakers(session: Session, distributor_id: str) -> list[Speaker]:
    return [Speaker.of(a) for a in speaker_amphorae(session, distributor_id)]


def _speakers_among(session: Session, distributor_id: str, amphora_ids: list[str]) -> list[Speaker]:
    return [s for s in _speakers(session, distributor_id) if s.amphora_id in amphora_ids]


def register(services: DistributorServices, speaker: Speaker, route: Route) -> None:
    """Register VIP on one amphora; already registered (a repeated call) is done."""
    try:
        with services.agent(speaker.amphora_id, speaker.lb_network_ip) as client:
            client.register_vip(route.vip_ip, route.nexthop_ip, route.peer_id)
    except AgentClientError as exc:
        if not (exc.status == 409 and "already registered" in exc.message):
            raise AgentClientError(
                exc.status, f"amphora {speaker.amphora_id}: {exc.message}", exc.field
            ) from exc


def register_all(services: DistributorServices, speaker: Speaker, routes: list[Route]) -> None:
    """Register VIP for many routes on one amphora in one request (one speaker change there);
    what is registered already is skipped."""
    if not routes:
        return
    try:
        with services.agent(speaker.amphora_id, speaker.lb_network_ip) as client:
            client.update_vips(add=[(r.vip_ip, r.nexthop_ip, r.peer_id) for r in routes])
    except AgentClientError as exc:
        raise AgentClientError(
            exc.status, f"amphora {speaker.amphora_id}: {exc.message}", exc.field
        ) from exc


def withdraw(services: DistributorServices, speakers: list[Speaker], route: Route) -> None:
    """Unregister VIP on each amphora; one that has no such route (404) or does not answer
    (its routes go with its BGP session) is skipped."""
    for speaker in speakers:
        try:
            address = speaker.lb_network_ip
            with services.agent(speaker.amphora_id, address, WITHDRAW_TIMEOUT) as client:
                client.unregister_vip(route.vip_ip, route.nexthop_ip, route.peer_id)
        except AgentClientError as exc:
            if exc.status != 404:
                raise
        except OSError as exc:
            log.warning("amphora %s unreachable, VIP route %s not withdrawn there: %s",
                        speaker.amphora_id, route.id, exc)  # fmt: skip


def _set_operating(services: DistributorServices, route_ids: list[str], announced: bool) -> None:
    """ONLINE once at least one amphora announces the route; OFFLINE while none runs the
    distributor's speakers (the route waits for the first one)."""
    with services.db.session(writer=True) as session:
        for route_id in route_ids:
            row = session.get(VipRoute, route_id)
            if row is not None and (announced or row.operating_status != c.ONLINE):
                row.operating_status = c.ONLINE if announced else c.OFFLINE


class RegisterVipRoute(DistributorTask):
    """Register VIP for the route on every amphora that runs the distributor's speakers, one
    at a time; the route's operating status says whether any announces it."""

    def execute(self, route_id: str) -> None:
        with self.services.db.session(writer=False) as session:
            found = _route(session, route_id)
            if found is None:
                raise RuntimeError(f"VIP route {route_id} is gone")
            route, distributor_id = found
            speakers = _speakers(session, distributor_id)
        for speaker in speakers:
            register(self.services, speaker, route)
        _set_operating(self.services, [route_id], bool(speakers))

    def revert(self, route_id: str, **_: Any) -> None:
        with self.services.db.session(writer=False) as session:
            found = _route(session, route_id)
            speakers = _speakers(session, found[1]) if found else []
        if found is not None:
            withdraw(self.services, speakers, found[0])


class UnregisterVipRoute(DistributorTask):
    """Unregister VIP for the route on every amphora that runs the distributor's speakers."""

    def execute(self, route_id: str) -> None:
        with self.services.db.session(writer=False) as session:
            found = _route(session, route_id)
            speakers = _speakers(session, found[1]) if found else []
        if found is not None:
            withdraw(self.services, speakers, found[0])


class AnnounceVipRoutes(DistributorTask):
    """New amphorae of a load balancer (create, scale-out, failover) that run the distributor's
    speakers announce its VIP routes, as the ones before them do. Runs once their front end is
    plugged (an agent refuses a next hop off its front-end subnet).

    The amphorae's speaker registrations are recorded (committed) before the routes are read:
    a route created meanwhile is then registered here, or by its own job (which reads the
    speaker amphorae after its row was committed), or by both (the second is a no-op)."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        distributor_id = self._join(loadbalancer_id, amphora_ids)
        if distributor_id is None:
            return
        with self.services.db.session(writer=False) as session:
            routes = [Route.of(r) for r in live_vip_routes(session, distributor_id)]
            speakers = _speakers_among(session, distributor_id, amphora_ids)
        for speaker in speakers:
            register_all(self.services, speaker, routes)
        if speakers and routes:
            _set_operating(self.services, [r.id for r in routes], True)

    def revert(self, loadbalancer_id: str, amphora_ids: list[str], **_: Any) -> None:
        with self.services.db.session(writer=False) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            distributor_id = lb.vip.distributor_id if lb is not None and lb.vip else None
            if distributor_id is None:
                return
            routes = [Route.of(r) for r in live_vip_routes(session, distributor_id)]
            speakers = _speakers_among(session, distributor_id, amphora_ids)
        for route in routes:
            withdraw(self.services, speakers, route)

    def _join(self, loadbalancer_id: str, amphora_ids: list[str]) -> str | None:
        """Record that the amphorae run the distributor's speakers (their config drive carries
        them); the distributor's id, None when the load balancer has no distributor."""
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            distributor_id = lb.vip.distributor_id if lb is not None and lb.vip else None
            distributor = session.get(Distributor, distributor_id) if distributor_id else None
            if distributor is None or mode(distributor.config_data) == DEDICATED:
                return None  # dedicated: the distributor amphorae announce, these run no BGP
            for speaker_id in speakers_in_use(distributor.config_data):
                for amphora_id in amphora_ids:
                    if session.get(AmphoraBgpSpeakerRegistration, (speaker_id, amphora_id)):
                        continue
                    session.add(
                        AmphoraBgpSpeakerRegistration(
                            distributor_l3_bgp_speaker_id=speaker_id, amphora_id=amphora_id
                        )
                    )
            return distributor.id
