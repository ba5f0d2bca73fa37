"""The L3_BGP distributor driver: the operator's BGP/ECMP fabric distributes the VIP.

Each amphora's own BGP speaker (configured from the distributor's speakers and peer profiles in
its config drive) announces the VIP with its front-end IP as next hop, through the extended
amphora API. The spec's registration tables record what is announced where.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from taskflow.flow import Flow
from taskflow.patterns import linear_flow

from l3dist.amphora_client import AgentClientError
from l3dist.common.parallel import each
from l3dist.contracts.agent_config import BgpSpeakerConfig
from l3dist.db.models import (
    Amphora,
    AmphoraBgpSpeakerRegistration,
    AmphoraRegistration,
    AmphoraVipRegistration,
    BgpSpeaker,
    Distributor,
    LoadBalancer,
    Vip,
    utcnow,
)
from l3dist.db.queries import bind_interface, lb_addresses, live_amphora_ids, unbind_interface
from l3dist.distributor import l3_bgp_dedicated as dedicated
from l3dist.distributor.base import AbstractDistributorDriver, DistributorServices
from l3dist.distributor.base import DistributorTask as _DistributorTask
from l3dist.distributor.l3_bgp_config import speakers_in_use
from l3dist.distributor.l3_bgp_vip_routes import (
    AnnounceVipRoutes,
    RegisterVipRoute,
    UnregisterVipRoute,
)

log = logging.getLogger(__name__)


def speaker_configs(session: Session, distributor_id: str | None) -> list[BgpSpeakerConfig]:
    """The BGP speakers (with peer profiles, passwords included) an amphora of the distributor
    runs: what its config drive carries."""
    distributor = session.get(Distributor, distributor_id) if distributor_id else None
    if distributor is None:
        return []
    result = []
    for speaker_id in speakers_in_use(distributor.config_data):
        speaker = session.get(BgpSpeaker, speaker_id)
        if speaker is None:
            continue
        result.append(
            BgpSpeakerConfig.model_validate(
                {
                    "id": speaker.id,
                    "ip_version": speaker.ip_version,
                    "local_as": speaker.local_as,
                    "peers": [
                        {
                            "id": peer.id,
                            "peer_ip": peer.peer_ip,
                            "remote_as": peer.remote_as,
                            "auth_type": peer.auth_type,
                            "password": peer.password,
                            "ttl_hops": peer.ttl_hops,
                            "hold_time": peer.hold_time,
                            "keepalive_interval": peer.keepalive_interval,
                            "bfd_enabled": peer.bfd_enabled,
                            "bfd_transmit_interval_ms": peer.bfd_transmit_interval_ms,
                            "bfd_receive_interval_ms": peer.bfd_receive_interval_ms,
                            "bfd_detect_multiplier": peer.bfd_detect_multiplier,
                        }
                        for peer in speaker.peers
                    ],
                }
            )
        )
    return result


UNREGISTER_TIMEOUT = 3.0


@dataclass(frozen=True)
class Target:
    amphora_id: str
    lb_network_ip: str
    nexthop_ip: str


def _targets(
    session: Session, loadbalancer_id: str, amphora_ids: list[str]
) -> tuple[LoadBalancer, list[Target]]:
    lb = session.get(LoadBalancer, loadbalancer_id)
    if lb is None or lb.vip is None or not lb.vip.ip_address:
        raise RuntimeError(f"load balancer {loadbalancer_id} has no VIP")
    targets = []
    for amphora_id in amphora_ids:
        amp = session.get(Amphora, amphora_id)
        if amp is None or not amp.lb_network_ip or not amp.frontend_ip:
            raise RuntimeError(f"amphora {amphora_id} is not plugged (no front-end IP)")
        targets.append(Target(amp.id, amp.lb_network_ip, amp.frontend_ip))
    return lb, targets


class RegisterAmphorae(_DistributorTask):
    """Register Amphora on each amphora's agent for each address of the load balancer (its
    VIP, and the floating IPs bound to its virtual-ip): its speaker announces them; then
    record the registrations (the amphora's front end joins the virtual-ip)."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        asked = utcnow()  # the interfaces' time: Register Amphora asked of the speakers
        with self.services.db.session(writer=True) as session:
            lb, targets = _targets(session, loadbalancer_id, amphora_ids)
            addresses = lb_addresses(session, lb)
            distributor_id = lb.vip.distributor_id  # type: ignore[union-attr]
            speakers = speaker_configs(session, distributor_id)
            by_distributors = dedicated.is_dedicated(session, distributor_id)
        version = ipaddress.ip_address(addresses[0]).version
        if by_distributors:
            assert distributor_id is not None
            announcing: list[dedicated.Speaker] = []
            for address in addresses:
                announcing = dedicated.register(self.services, distributor_id, address, targets)
            with self.services.db.session(writer=True) as session:
                for target in targets:
                    _record(session, target, loadbalancer_id, distributor_id, [], version, asked)
                    dedicated.record(session, announcing, loadbalancer_id, distributor_id,
                                     target.nexthop_ip, speakers, version)  # fmt: skip
            return

        def register(target: Target) -> None:
            with self.services.agent(target.amphora_id, target.lb_network_ip) as client:
                for address in addresses:
                    # An earlier Unregister took the address off loopback (the spec): plug it
                    # again (no-op when there) so a listener start re-announces.
                    client.plug_vip(address)
                    _register(client, target, address)

        each(register, targets)
        with self.services.db.session(writer=True) as session:
            for target in targets:
                _record(session, target, loadbalancer_id, distributor_id, speakers, version, asked)

    def revert(self, loadbalancer_id: str, amphora_ids: list[str], **_: Any) -> None:
        _unregister(self.services, loadbalancer_id, amphora_ids)


def _register(client: Any, target: Target, address: str) -> None:
    """Register Amphora for one address; a resumed flow finds it registered and goes on."""
    try:
        client.register_amphora(target.amphora_id, address, target.nexthop_ip)
    except AgentClientError as exc:
        if not (exc.status == 409 and "already registered" in exc.message):
            raise


def _record(
    session: Session,
    target: Target,
    loadbalancer_id: str,
    distributor_id: str | None,
    speakers: list[BgpSpeakerConfig],
    version: int,
    asked: datetime.datetime | None = None,
) -> None:
    _forget_rows(session, loadbalancer_id, target.amphora_id)
    lb, amphora = (
        session.get(LoadBalancer, loadbalancer_id),
        session.get(Amphora, target.amphora_id),
    )
    if lb is not None and amphora is not None:
        bind_interface(session, lb, amphora, asked)
    session.add(
        AmphoraRegistration(
            amphora_id=target.amphora_id,
            load_balancer_id=loadbalancer_id,
            distributor_id=distributor_id,
        )
    )
    for speaker in speakers:
        exists = session.get(AmphoraBgpSpeakerRegistration, (speaker.id, target.amphora_id))
        if exists is None:
            session.add(
                AmphoraBgpSpeakerRegistration(
                    distributor_l3_bgp_speaker_id=speaker.id, amphora_id=target.amphora_id
                )
            )
    dedicated.add_paths(
        session, target.amphora_id, loadbalancer_id, target.nexthop_ip, speakers, version
    )


def _forget(session: Session, loadbalancer_id: str, amphora_id: str) -> None:
    """The amphora no longer serves the load balancer: its registrations go, and its front
    end leaves the virtual-ip."""
    _forget_rows(session, loadbalancer_id, amphora_id)
    unbind_interface(session, loadbalancer_id, amphora_id)


def _forget_rows(session: Session, loadbalancer_id: str, amphora_id: str) -> None:
    session.execute(
        delete(AmphoraVipRegistration).where(
            AmphoraVipRegistration.amphora_id == amphora_id,
            AmphoraVipRegistration.load_balancer_id == loadbalancer_id,
        )
    )
    session.execute(
        delete(AmphoraRegistration).where(
            AmphoraRegistration.amphora_id == amphora_id,
            AmphoraRegistration.load_balancer_id == loadbalancer_id,
        )
    )
    session.flush()


def _unregister(
    services: DistributorServices, loadbalancer_id: str, amphora_ids: list[str]
) -> None:
    """Unregister Amphora on each agent (withdraw first; then the VIP leaves its loopback) and
    forget the registrations. What is not registered (or not reachable: gone) is skipped."""
    with services.db.session(writer=True) as session:
        lb = session.get(LoadBalancer, loadbalancer_id)
        addresses = lb_addresses(session, lb) if lb is not None else []
        distributor_id = lb.vip.distributor_id if lb is not None and lb.vip is not None else None
        rows = session.scalars(select(Amphora).where(Amphora.id.in_(amphora_ids))).all()
        targets = [
            Target(a.id, a.lb_network_ip, a.frontend_ip)
            for a in rows
            if a.lb_network_ip and a.frontend_ip
        ]
        by_distributors = dedicated.is_dedicated(session, distributor_id)
    if by_distributors:
        assert distributor_id is not None
        for address in addresses:
            dedicated.withdraw(services, distributor_id, loadbalancer_id, address, targets)
        targets = []  # the load-balancing amphorae announce nothing themselves
    _unregister_addresses(services, targets, addresses)
    with services.db.session(writer=True) as session:
        for amphora_id in amphora_ids:
            _forget(session, loadbalancer_id, amphora_id)


def _on_each_address(
    services: DistributorServices,
    targets: list[Target],
    addresses: list[str],
    call: Callable[[Any, Target, str], object],
    skipped: tuple[int, ...] = (404,),
) -> None:
    """call(client, target, address) for every address on every target, all targets at once
    (in the time of one amphora). An answer in skipped (nothing to undo there) and an
    unreachable amphora are skipped: its routes go with its BGP session. Short timeout: a hung
    amphora (failover) must not hold the flow."""

    def on(target: Target) -> None:
        try:
            with services.agent(target.amphora_id, target.lb_network_ip, UNREGISTER_TIMEOUT) as c:
                for address in addresses:
                    try:
                        call(c, target, address)
                    except AgentClientError as exc:
                        if exc.status not in skipped:
                            raise
        except OSError as exc:
            log.info("amphora %s skipped (unreachable): %s", target.amphora_id, exc)

    each(on, targets)


def _unregister_addresses(
    services: DistributorServices, targets: list[Target], addresses: list[str]
) -> None:
    """Unregister Amphora for each address on each target (its speaker withdraws it, then the
    address leaves its loopback)."""
    _on_each_address(
        services, targets, addresses,
        lambda c, t, a: c.unregister_amphora(t.amphora_id, a, t.nexthop_ip),
    )  # fmt: skip


class UnregisterAddresses(_DistributorTask):
    """Floating IPs unbound from the load balancer (``addresses``): every amphora of it stops
    announcing them and takes them off its loopback; its registrations (the VIP's) stay. A
    resumed flow repeats it: what is already gone is skipped."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str], addresses: list[str]) -> None:
        with self.services.db.session(writer=False) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            distributor_id = lb.vip.distributor_id if lb is not None and lb.vip else None
            targets = [
                Target(a.id, a.lb_network_ip, a.frontend_ip)
                for a in session.scalars(select(Amphora).where(Amphora.id.in_(amphora_ids)))
                if a.lb_network_ip and a.frontend_ip
            ]
            by_distributors = dedicated.is_dedicated(session, distributor_id)
        if by_distributors:
            assert distributor_id is not None
            for address in addresses:
                dedicated.withdraw(
                    self.services, distributor_id, loadbalancer_id, address, targets, forget=False
                )
            return
        _unregister_addresses(self.services, targets, addresses)
        _on_each_address(
            self.services, targets, addresses, lambda c, _, a: c.unplug_vip(a), (404, 409)
        )


class UnregisterAmphorae(_DistributorTask):
    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        _unregister(self.services, loadbalancer_id, amphora_ids)


class DrainAmphorae(_DistributorTask):
    """Drain Amphora: each amphora's route is withdrawn (the fabric sends it no new flows) while
    its VIP stays on loopback and HAProxy keeps serving its established connections, which the
    peers' flow rescue still delivers. The drain start is recorded (operating status DRAINING);
    an amphora that is not registered or does not answer has nothing to drain."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        with self.services.db.session(writer=True) as session:
            lb, targets = _targets(session, loadbalancer_id, amphora_ids)
            addresses = lb_addresses(session, lb)
            distributor_id = lb.vip.distributor_id  # type: ignore[union-attr]
            by_distributors = dedicated.is_dedicated(session, distributor_id)
        if by_distributors:
            assert distributor_id is not None
            for address in addresses:
                dedicated.withdraw(
                    self.services, distributor_id, loadbalancer_id, address, targets, drain=True
                )
            targets = []
        _on_each_address(
            self.services, targets, addresses,
            lambda c, t, a: c.drain_amphora(t.amphora_id, a, t.nexthop_ip),
        )  # fmt: skip
        with self.services.db.session(writer=True) as session:
            for amp in session.scalars(select(Amphora).where(Amphora.id.in_(amphora_ids))):
                amp.drain_started_at = amp.drain_started_at or utcnow()

    def revert(self, loadbalancer_id: str, amphora_ids: list[str], **_: Any) -> None:
        """The drain is called off: registering again re-announces a drained route."""
        with self.services.db.session(writer=True) as session:
            lb, targets = _targets(session, loadbalancer_id, amphora_ids)
            addresses = lb_addresses(session, lb)
            for amp in session.scalars(select(Amphora).where(Amphora.id.in_(amphora_ids))):
                amp.drain_started_at = None
            registered = set(
                session.scalars(
                    select(AmphoraRegistration.amphora_id).where(
                        AmphoraRegistration.load_balancer_id == loadbalancer_id
                    )
                )
            )
            distributor_id = lb.vip.distributor_id  # type: ignore[union-attr]
            by_distributors = dedicated.is_dedicated(session, distributor_id)
        if by_distributors:
            assert distributor_id is not None
            back = [t for t in targets if t.amphora_id in registered]
            try:
                for address in addresses:
                    dedicated.register(self.services, distributor_id, address, back)
            except (AgentClientError, OSError, RuntimeError) as exc:
                log.warning("drain not called off on the distributors: %s", exc)
            return
        for target in targets:
            if target.amphora_id not in registered:
                continue
            try:
                with self.services.agent(
                    target.amphora_id, target.lb_network_ip, UNREGISTER_TIMEOUT
                ) as client:
                    for address in addresses:
                        _register(client, target, address)
            except (AgentClientError, OSError) as exc:
                log.warning("drain of amphora %s not called off: %s", target.amphora_id, exc)


class WaitForDrained(_DistributorTask):
    """Wait until the drained amphorae have no client connection left, or the drain timeout
    (from the recorded drain start, so a resumed flow does not start the clock again)."""

    POLL_INTERVAL = 0.5

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        with self.services.db.session(writer=True) as session:
            lb, targets = _targets(session, loadbalancer_id, amphora_ids)
            addresses = lb_addresses(session, lb)
            starts = [
                a.drain_started_at
                for a in session.scalars(select(Amphora).where(Amphora.id.in_(amphora_ids)))
                if a.drain_started_at is not None
            ]
            by_distributors = dedicated.is_dedicated(session, lb.vip.distributor_id)  # type: ignore[union-attr]
        deadline = min(starts, default=utcnow()) + datetime.timedelta(
            seconds=self.services.drain_timeout
        )
        waiting = {t.amphora_id: t for t in targets}
        while True:
            left = {
                a: sum(self._connections(t, address, by_distributors) for address in addresses)
                for a, t in waiting.items()
            }
            waiting = {a: waiting[a] for a, n in left.items() if n}
            if not waiting:
                return
            if utcnow() >= deadline:
                log.warning(
                    "drain timeout: amphorae leave with connections open: %s",
                    {a: left[a] for a in waiting},
                )
                return
            time.sleep(self.POLL_INTERVAL)

    def _connections(self, target: Target, vip: str, by_distributors: bool) -> int:
        """Its client connections to the VIP; 0 when it does not answer (nothing to wait for)."""
        if by_distributors:
            try:
                return dedicated.connections(self.services, target, vip)
            except (AgentClientError, OSError):
                return 0
        try:
            with self.services.agent(
                target.amphora_id, target.lb_network_ip, UNREGISTER_TIMEOUT
            ) as client:
                rows = client.list_amphorae(amphora_id=target.amphora_id, vip_ip=vip)
        except (AgentClientError, OSError):
            return 0
        return max((int(r.get("connections", 0)) for r in rows), default=0)


class DistributorRefused(RuntimeError):
    """The distributor cannot work on the fabric as configured; the message says why."""


class CheckFabric(_DistributorTask):
    """What a distributor's amphorae will need of the fabric, checked before it is ACTIVE: at
    least one BGP speaker, each with at least one peer profile (the API accepts a speaker
    without peers, and its peers may be removed later: its amphorae would announce to no
    one). Peer families and the speakers' existence the API already enforces."""

    def execute(self, distributor_id: str) -> None:
        with self.services.db.session(writer=False) as session:
            distributor = session.get(Distributor, distributor_id)
            if distributor is None:
                raise DistributorRefused(f"distributor {distributor_id} is gone")
            speaker_ids = speakers_in_use(distributor.config_data)
            if not speaker_ids:
                raise DistributorRefused(
                    f"distributor {distributor_id} has no BGP speaker (config_data.bgp_speaker_ids)"
                )
            for speaker_id in speaker_ids:
                speaker = session.get(BgpSpeaker, speaker_id)
                if speaker is None:
                    raise DistributorRefused(f"BGP speaker {speaker_id} not found")
                if not speaker.peers:
                    raise DistributorRefused(f"BGP speaker {speaker_id} has no BGP peer")


ROLL_TIMEOUT = 60.0  # for one amphora's sessions to come back with the new settings


class RollSpeakers(_DistributorTask):
    """The distributor's speakers or peer profiles changed: every amphora of its load
    balancers gets them (``PUT /1.0/bgp``), one amphora at a time, and the next waits until
    that one's sessions are all Established again with the new settings; meanwhile the
    others carry the traffic (its routes are withdrawn while its speaker restarts). A resumed
    flow repeats it: an amphora already rolled answers that nothing changed. An amphora whose
    sessions do not come back fails the roll (the distributor is ERROR, with the reason); the
    ones not reached yet keep the old settings."""

    def execute(self, distributor_id: str) -> None:
        with self.services.db.session(writer=False) as session:
            speakers = speaker_configs(session, distributor_id)
            lbs = session.scalars(
                select(LoadBalancer)
                .join(Vip, Vip.load_balancer_id == LoadBalancer.id)
                .where(Vip.distributor_id == distributor_id)
                .order_by(LoadBalancer.created_at)
            ).all()
            targets: list[tuple[str | None, str, str, str | None]] = [
                (lb.id, amp.id, amp.lb_network_ip, amp.frontend_ip)
                for lb in lbs
                for amp in (session.get(Amphora, i) for i in live_amphora_ids(session, lb.id))
                if amp is not None and amp.lb_network_ip
            ]
            if dedicated.is_dedicated(session, distributor_id):
                # The distributor amphorae hold the sessions; the others run no BGP.
                targets = [
                    (None, s.amphora_id, s.lb_network_ip, None)
                    for s in dedicated.distributor_amphorae(session, distributor_id)
                ]
        for lb_id, amphora_id, address, frontend_ip in targets:
            with self.services.agent(amphora_id, address, timeout=ROLL_TIMEOUT) as client:
                client.update_speakers(speakers)
                # Also when nothing changed: a resumed roll may have restarted it just before.
                self._wait_established(client, amphora_id)
            if lb_id is not None:
                self._record_peers(
                    distributor_id, lb_id, amphora_id, address, frontend_ip, speakers
                )
            log.info("amphora %s runs distributor %s's speakers", amphora_id, distributor_id)

    def _record_peers(
        self,
        distributor_id: str,
        lb_id: str,
        amphora_id: str,
        address: str,
        frontend_ip: str | None,
        speakers: list[BgpSpeakerConfig],
    ) -> None:
        """A registered amphora's records name the peers it announces to now."""
        with self.services.db.session(writer=True) as session:
            registered = session.get(AmphoraRegistration, (amphora_id, lb_id))
            lb = session.get(LoadBalancer, lb_id)
            if registered is None or frontend_ip is None or lb is None or lb.vip is None:
                return
            version = ipaddress.ip_address(str(lb.vip.ip_address)).version
            target = Target(amphora_id, address, frontend_ip)
            _record(session, target, lb_id, distributor_id, speakers, version)

    @staticmethod
    def _wait_established(client: Any, amphora_id: str) -> None:
        deadline = time.monotonic() + ROLL_TIMEOUT
        while True:
            peers = client.bgp_status()["peers"]
            if peers and all(p["established"] for p in peers):
                return
            if time.monotonic() > deadline:
                states = ", ".join(f"{p['peer_id']} {p['state']}" for p in peers)
                raise DistributorRefused(
                    f"amphora {amphora_id}: BGP sessions not established with the new "
                    f"settings after {ROLL_TIMEOUT:.0f} s ({states})"
                )
            time.sleep(0.2)


class Nothing(_DistributorTask):
    """The fabric needs no per-distributor or per-VIP set-up: routes come with registration."""

    def execute(self) -> None:
        return None


class L3BgpDistributorDriver(AbstractDistributorDriver):
    def _flow(self, name: str, step: _DistributorTask) -> Flow:
        return linear_flow.Flow(name).add(step)

    def get_create_distributor_subflow(self, suffix: str = "") -> Flow:
        return self._flow(
            f"create-distributor{suffix}", CheckFabric(self.services, f"check-fabric{suffix}")
        )

    def get_update_distributor_subflow(self, suffix: str = "") -> Flow:
        return linear_flow.Flow(f"update-distributor{suffix}").add(
            CheckFabric(self.services, f"check-fabric{suffix}"),
            RollSpeakers(self.services, f"roll-speakers{suffix}"),
        )

    def get_delete_distributor_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"delete-distributor{suffix}", Nothing(self.services, f"nop-d{suffix}"))

    def get_add_vip_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"add-vip{suffix}", Nothing(self.services, f"nop-av{suffix}"))

    def get_remove_vip_subflow(self, suffix: str = "") -> Flow:
        return self._flow(f"remove-vip{suffix}", Nothing(self.services, f"nop-rv{suffix}"))

    def get_register_amphorae_subflow(self, suffix: str = "") -> Flow:
        return self._flow(
            f"register{suffix}", RegisterAmphorae(self.services, f"register-amphorae{suffix}")
        )

    def get_drain_amphorae_subflow(self, suffix: str = "") -> Flow:
        return linear_flow.Flow(f"drain{suffix}").add(
            DrainAmphorae(self.services, f"drain-amphorae{suffix}"),
            WaitForDrained(self.services, f"wait-drained{suffix}"),
        )

    def get_unregister_amphorae_subflow(self, suffix: str = "") -> Flow:
        return self._flow(
            f"unregister{suffix}",
            UnregisterAmphorae(self.services, f"unregister-amphorae{suffix}"),
        )

    def get_unregister_addresses_subflow(self, suffix: str = "") -> Flow:
        return self._flow(
            f"unregister-addresses{suffix}",
            UnregisterAddresses(self.services, f"unregister-addresses{suffix}"),
        )

    def get_register_vip_route_subflow(self, suffix: str = "") -> Flow:
        return self._flow(
            f"register-vip-route{suffix}", RegisterVipRoute(self.services, f"register-vip{suffix}")
        )

    def get_unregister_vip_route_subflow(self, suffix: str = "") -> Flow:
        return self._flow(
            f"unregister-vip-route{suffix}",
            UnregisterVipRoute(self.services, f"unregister-vip{suffix}"),
        )

    def get_announce_vip_routes_subflow(self, suffix: str = "") -> Flow:
        return self._flow(
            f"announce-vip-routes{suffix}",
            AnnounceVipRoutes(self.services, f"announce-vip-routes{suffix}"),
        )
