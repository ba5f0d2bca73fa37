"""The controller's tasks. Each one is safe to run again (a resumed flow repeats the task that
was running when its worker died) and undoes its own work in revert()."""

from __future__ import annotations

import contextlib
import logging
import uuid
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, select
from taskflow import task

from l3dist.common import constants as c
from l3dist.common.parallel import each
from l3dist.compute.base import BuiltAmphora, DistributorRole
from l3dist.contracts.agent_config import BgpSpeakerConfig, IPNetwork
from l3dist.controller import haproxy_config
from l3dist.controller.services import Services
from l3dist.db import hosts as host_pool
from l3dist.db.models import (
    Amphora,
    AmphoraBgpSpeakerRegistration,
    AmphoraHealth,
    AmphoraRegistration,
    Distributor,
    HealthMonitor,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    Vip,
)
from l3dist.db.queries import lb_addresses, live_amphora_ids, release_floating_ips
from l3dist.distributor import l3_bgp_config
from l3dist.distributor.l3_bgp import speaker_configs
from l3dist.distributor.l3_bgp_dedicated import is_dedicated
from l3dist.network.exceptions import NetworkException, PortNotFound
from l3dist.network.frontend import frontend_plug
from l3dist.network.roles import announceable_prefixes

log = logging.getLogger(__name__)
AMPHORA_NAMESPACE = uuid.UUID("0b7c7a3e-52f4-4d0e-8d8e-6a1f1f2c9a10")


class ServiceTask(task.Task):  # type: ignore[misc]
    def __init__(self, services: Services, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or type(self).__name__, **kwargs)
        self.services = services


def _lb_view(lb: LoadBalancer, amphorae: list[Amphora]) -> SimpleNamespace:
    """What the network driver reads from a load balancer (Octavia's data model fields)."""
    return SimpleNamespace(
        id=lb.id, topology=lb.topology, vip=lb.vip, amphorae=amphorae, enabled=lb.enabled
    )


def _amphorae(session: Any, ids: list[str]) -> list[Amphora]:
    rows = {a.id: a for a in session.scalars(select(Amphora).where(Amphora.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


# -- load balancer status ---------------------------------------------------------------------


class MarkLoadBalancerErrorOnRevert(ServiceTask):
    """First task of a flow: if anything after it fails for good, the load balancer (and what
    was pending under it) ends in ERROR, never stuck in PENDING_*."""

    def execute(self, loadbalancer_id: str) -> None:
        return None

    def revert(self, loadbalancer_id: str, **_: Any) -> None:
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            if lb is None:
                return
            lb.provisioning_status = c.ERROR
            children: list[Any] = [*lb.listeners, *lb.pools]
            for pool in lb.pools:
                children += [*pool.members, pool.health_monitor]
            for child in children:
                if child is not None and child.provisioning_status in c.PENDING_STATUSES:
                    child.provisioning_status = c.ERROR


class MarkDistributorErrorOnRevert(ServiceTask):
    """First task of a distributor's flow: if its driver refuses it, it ends in ERROR (the
    reason is the job's error), never stuck in PENDING_*."""

    def execute(self, distributor_id: str) -> None:
        return None

    def revert(self, distributor_id: str, **_: Any) -> None:
        with self.services.db.session(writer=True) as session:
            distributor = session.get(Distributor, distributor_id)
            if distributor is not None:
                distributor.status = c.ERROR


class MarkDistributorActive(ServiceTask):
    """Last task of a distributor's flow: its driver set it up, load balancers may use it."""

    def execute(self, distributor_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            distributor = session.get(Distributor, distributor_id)
            if distributor is not None:
                distributor.status = c.ACTIVE


class AmphoraeMissing(Exception):
    """A load balancer is not what ACTIVE promises: fewer amphorae than its amphora_count, or
    (serving) some not registered. Raised by the last task, so the flow reverts to ERROR."""


class MarkLoadBalancerActive(ServiceTask):
    """Settle the load balancer and its children: pending objects become ACTIVE, objects being
    deleted are gone; operating status from what is registered.

    Invariant: ACTIVE means the amphorae it should have are built (``amphora_count`` live
    ones) and, when a listener runs, registered: the flows register every live amphora that a
    serving load balancer has not registered (their plans), and a registration that fails
    fails the flow, so the count is what is left to check here. A load balancer whose create
    failed has no amphorae; a later change must not make it ACTIVE with nothing behind it (it
    was seen: a listener added to one made it ACTIVE with 0 of its 2 amphorae). It stays
    ERROR, with this reason, until a failover or an amphora_count update builds what is
    missing."""

    def __init__(self, services: Services, whole: bool = False, **kwargs: Any) -> None:
        """whole: the flow pushed the whole configuration to every amphora, so children left
        in ERROR by an earlier failure run now, and become ACTIVE too (a repair)."""
        super().__init__(services, **kwargs)
        self.settled = (*c.PENDING_STATUSES, c.ERROR) if whole else c.PENDING_STATUSES

    def execute(self, loadbalancer_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            if lb is None:
                return
            _check_complete(session, lb)
            for pool in list(lb.pools):
                monitor = pool.health_monitor
                if monitor is not None:
                    _settle(session, monitor, self.settled)
                for member in list(pool.members):
                    _settle(session, member, self.settled)
            for listener in list(lb.listeners):
                _settle(session, listener, self.settled)
            for pool in list(lb.pools):
                _settle(session, pool, self.settled)
            lb.provisioning_status = c.ACTIVE
            lb.operating_status = operating_status(session, lb)


def _check_complete(session: Any, lb: LoadBalancer) -> None:
    """AmphoraeMissing when lb has fewer live amphorae than its amphora_count."""
    live = live_amphora_ids(session, lb.id)
    if len(live) < lb.amphora_count:
        raise AmphoraeMissing(
            f"load balancer {lb.id} has {len(live)} of its {lb.amphora_count} amphorae; a "
            "failover of the load balancer (or an amphora_count update) builds the missing ones"
        )


def _settle(
    session: Any, row: Listener | Pool | Member | HealthMonitor, settled: tuple[str, ...]
) -> None:
    if row.provisioning_status == c.PENDING_DELETE:
        session.delete(row)
        session.flush()
    elif row.provisioning_status in settled:
        row.provisioning_status = c.ACTIVE
        row.operating_status = c.ONLINE if row.enabled else c.OFFLINE


def operating_status(session: Any, lb: LoadBalancer) -> str:
    """ONLINE when every amphora is registered, DEGRADED when only some are, OFFLINE when none
    (or no listener runs: nothing is announced)."""
    amphorae = set(live_amphora_ids(session, lb.id))
    registered = set(
        session.scalars(
            select(AmphoraRegistration.amphora_id).where(
                AmphoraRegistration.load_balancer_id == lb.id
            )
        )
    )
    if not lb.enabled or not amphorae or not registered & amphorae:
        return c.OFFLINE
    return c.ONLINE if amphorae <= registered else c.DEGRADED


# -- VIP --------------------------------------------------------------------------------------


class AllocateVip(ServiceTask):
    def execute(self, loadbalancer_id: str) -> None:
        # No transaction stays open across a driver call: the driver writes too (SQLite would
        # refuse to upgrade the older read transaction afterwards).
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            assert lb is not None and lb.vip is not None
        vip = self.services.network.allocate_vip(_lb_view(lb, []))
        with self.services.db.session(writer=True) as session:
            row = session.get(Vip, loadbalancer_id)
            assert row is not None
            row.ip_address = vip.ip_address
            row.port_id = vip.port_id
            row.network_id = vip.network_id

    def revert(self, loadbalancer_id: str, **_: Any) -> None:
        _deallocate_vip(self.services, loadbalancer_id)


def _deallocate_vip(services: Services, loadbalancer_id: str) -> None:
    with services.db.session(writer=False) as session:
        vip = session.get(Vip, loadbalancer_id)
    if vip is not None and vip.port_id:
        with contextlib.suppress(NetworkException):
            services.network.deallocate_vip(vip)


class DeallocateVip(ServiceTask):
    def execute(self, loadbalancer_id: str) -> None:
        _deallocate_vip(self.services, loadbalancer_id)


class PlugVip(ServiceTask):
    """The network driver gives each amphora its front-end port and the VIP (on loopback for
    ACTIVE_ACTIVE); the front-end IP is recorded on the amphora (its next hop)."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            assert lb is not None and lb.vip is not None
            view = _lb_view(lb, _amphorae(session, amphora_ids))
        self.services.network.plug_vip(view, lb.vip)
        with self.services.db.session(writer=True) as session:
            for plugged in view.amphorae:
                amp = session.get(Amphora, plugged.id)
                assert amp is not None
                amp.frontend_ip = plugged.frontend_ip
                amp.frontend_port_id = plugged.frontend_port_id
                amp.frontend_subnet_id = plugged.frontend_subnet_id
                amp.frontend_interface = plugged.frontend_interface

    def revert(self, loadbalancer_id: str, amphora_ids: list[str], **_: Any) -> None:
        _unplug_vip(self.services, loadbalancer_id, amphora_ids)


def _unplug_vip(services: Services, loadbalancer_id: str, amphora_ids: list[str]) -> None:
    with services.db.session(writer=False) as session:
        lb = session.get(LoadBalancer, loadbalancer_id)
        if lb is None or lb.vip is None:
            return
        view = _lb_view(lb, _amphorae(session, amphora_ids))
    with contextlib.suppress(NetworkException):
        services.network.unplug_vip(view, lb.vip)


class UnplugVip(ServiceTask):
    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        _unplug_vip(self.services, loadbalancer_id, amphora_ids)


class UpdateVip(ServiceTask):
    """The network driver's update_vip hook, with the load balancer as it now is (its live
    amphorae, enabled or not): the last step of every change to a load balancer."""

    def execute(self, loadbalancer_id: str) -> None:
        _update_vip(self.services, loadbalancer_id)


def _update_vip(services: Services, loadbalancer_id: str) -> None:
    with services.db.session(writer=False) as session:
        lb = session.get(LoadBalancer, loadbalancer_id)
        if lb is None or lb.vip is None:
            return
        view = _lb_view(lb, _amphorae(session, live_amphora_ids(session, loadbalancer_id)))
    services.network.update_vip(view)


class PrepareFailover(ServiceTask):
    """The network driver's failover_preparation for each amphora being replaced (the static
    driver retires its front-end ports); undone by update_vip if the failover reverts. An
    amphora without ports (a crashed build) needs no preparation."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        with self.services.db.session(writer=False) as session:
            amphorae = _amphorae(session, amphora_ids)
        for amphora in amphorae:
            try:
                self.services.network.failover_preparation(amphora)
            except PortNotFound:
                log.info("amphora %s has no port to prepare for its failover", amphora.id)

    def revert(self, loadbalancer_id: str, amphora_ids: list[str], **_: Any) -> None:
        with contextlib.suppress(NetworkException):
            _update_vip(self.services, loadbalancer_id)


class AgentPlugFrontend(ServiceTask):
    """Tell each agent the front-end port the network driver reserved (MAC, MTU, addresses with
    their prefix lengths, gateways): on an amphora host the agent makes it (fe0 in the
    amphora-haproxy namespace); where the network driver wired it already, the agent finds
    it there. Runs before the VIP is plugged, so the next hop exists before any route."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        with self.services.db.session(writer=True) as session:
            targets = [
                (a.id, a.lb_network_ip, a.frontend_port_id) for a in _amphorae(session, amphora_ids)
            ]
        network = self.services.network

        def plug(target: tuple[str, str | None, str | None]) -> None:
            amphora_id, address, port_id = target
            if port_id is None:
                return
            plugged = frontend_plug(network, port_id)
            with self.services.agent(amphora_id, address) as client:
                client.plug_frontend(plugged)

        each(plug, targets)


class AgentPlugVip(ServiceTask):
    """Tell each agent about its VIP (it keeps it on loopback across restarts and makes the
    front-end gateways learn its MAC before any route points at it)."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            assert lb is not None and lb.vip is not None
            vip = str(lb.vip.ip_address)
            targets = [(a.id, a.lb_network_ip) for a in _amphorae(session, amphora_ids)]

        def plug(target: tuple[str, str | None]) -> None:
            with self.services.agent(*target) as client:
                client.plug_vip(vip)

        each(plug, targets)


class RescueMembership(ServiceTask):
    """Flow rescue (spec P2): every amphora of an ACTIVE_ACTIVE load balancer copies the flows
    the router sends it but it does not own to its peers. On a membership change, the rules
    change in a safe order: joining amphorae (amphora_ids, joining=True) get theirs first, then
    the others learn about them, so no amphora ever copies to one that lacks the rules; leaving
    amphorae (joining=False, already unregistered) are dropped from everyone's peers."""

    def __init__(self, services: Services, name: str, joining: bool) -> None:
        super().__init__(services, name)
        self.joining = joining

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            assert lb is not None
            if lb.topology != c.TOPOLOGY_ACTIVE_ACTIVE:
                return
            distributor = session.get(Distributor, lb.vip.distributor_id) if lb.vip else None
            configured_macs = l3_bgp_config.router_macs(
                distributor.config_data if distributor else None
            )
            live = _amphorae(session, live_amphora_ids(session, loadbalancer_id))
            # An amphora the health manager is failing over (busy) is dead: no copies to it.
            dead = set(
                session.scalars(
                    select(AmphoraHealth.amphora_id).where(AmphoraHealth.busy.is_(True))
                )
            )
            members = {
                a.id: (a.lb_network_ip, a.frontend_ip)
                for a in live
                if a.frontend_ip and a.id not in dead and (self.joining or a.id not in amphora_ids)
            }

        def configure(amphora_id: str, timeout: float = 10.0) -> None:
            peers = [ip for other, (_, ip) in members.items() if other != amphora_id and ip]
            with self.services.agent(amphora_id, members[amphora_id][0], timeout) as client:
                client.set_flow_rescue(peers, configured_macs)

        def update(amphora_id: str) -> None:
            """A member that does not answer keeps its old peers: it is on its way out (the
            health manager replaces it), and copies to a new peer are only a missed rescue."""
            try:
                configure(amphora_id, timeout=3.0)
            except OSError as exc:
                log.warning("flow rescue peers of amphora %s not updated: %s", amphora_id, exc)

        joining = [a for a in members if a in amphora_ids] if self.joining else []
        each(configure, joining)
        each(update, [a for a in members if a not in joining])


# -- amphorae ---------------------------------------------------------------------------------


class CreateAmphoraInDB(ServiceTask):
    """An amphora row, with an id derived from the job and the task, so the task run again
    after a crash finds the same amphora instead of making another."""

    def execute(self, loadbalancer_id: str, job_id: str) -> str:
        amphora_id = str(uuid.uuid5(AMPHORA_NAMESPACE, f"{job_id}/{self.name}"))
        with self.services.db.session(writer=True) as session:
            if session.get(Amphora, amphora_id) is None:
                session.add(
                    Amphora(
                        id=amphora_id,
                        status=c.PENDING_CREATE,
                        load_balancer_id=loadbalancer_id,
                        role=c.ROLE_ACTIVE,
                        service_type=c.SERVICE_LOAD_BALANCER_AND_DISTRIBUTOR,
                    )
                )
        return amphora_id

    def revert(self, result: Any, **_: Any) -> None:
        if not isinstance(result, str):
            return
        with self.services.db.session(writer=True) as session:
            amp = session.get(Amphora, result)
            if amp is not None:
                amp.status = c.DELETED
                amp.load_balancer_id = None


def _speaker_driver(services: Services, amphora_id: str) -> str:
    """The speaker the amphora runs: its load balancer's choice, else the controller's."""
    with services.db.session(writer=False) as session:
        amp = session.get(Amphora, amphora_id)
        lb = amp.load_balancer if amp is not None else None
        chosen = lb.speaker_driver if lb is not None else None
    return chosen or services.speaker_driver


def build_amphora(
    services: Services,
    amphora_id: str,
    speakers: list[BgpSpeakerConfig],
    prefixes: list[IPNetwork],
    distributor: DistributorRole | None = None,
) -> BuiltAmphora:
    """Build an amphora through the compute driver and record where it runs (compute id,
    management address): a load-balancing one, or with ``distributor`` a dedicated
    distributor's. Whatever a crashed attempt left (even a half-made amphora) goes first."""
    compute = services.compute
    compute.delete(amphora_id)
    # The key goes straight into the config drive: never a task result (those are stored).
    certificates = services.ca.issue_amphora(amphora_id)
    built = compute.build(amphora_id, speakers, _speaker_driver(services, amphora_id),
                          certificates, services.heartbeat, prefixes,
                          distributor=distributor)  # fmt: skip
    with services.db.session(writer=True) as session:
        amp = session.get(Amphora, amphora_id)
        assert amp is not None
        amp.compute_id, amp.lb_network_ip = built.compute_id, built.lb_network_ip
    return built


class ComputeCreate(ServiceTask):
    """Build the amphora (its config drive carries the distributor's BGP speakers and the
    anycast pools it may announce in); the compute driver returns once its agent answers."""

    def execute(self, loadbalancer_id: str, amphora_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            assert lb is not None and lb.vip is not None
            # A dedicated distributor's amphorae announce this one: it runs no BGP at all.
            by_distributors = is_dedicated(session, lb.vip.distributor_id)
            speakers = [] if by_distributors else speaker_configs(session, lb.vip.distributor_id)
        prefixes = announceable_prefixes(self.services.network)
        if not prefixes:
            log.warning("no anycast subnet: amphora %s will announce nothing", amphora_id)
        build_amphora(self.services, amphora_id, speakers, prefixes)
        with self.services.db.session(writer=True) as session:
            amp = session.get(Amphora, amphora_id)
            assert amp is not None
            amp.status = c.AMPHORA_ALLOCATED

    def revert(self, amphora_id: str, **_: Any) -> None:
        self.services.compute.delete(amphora_id)


class CollectAmphorae(ServiceTask):
    """The ids made by the parallel create subflows, as one list (amphora_ids)."""

    def execute(self, **created: str) -> list[str]:
        return [created[k] for k in sorted(created)]


class AllAmphorae(ServiceTask):
    """The load balancer's amphorae now (amphora_ids)."""

    def __init__(self, services: Services, name: str) -> None:
        super().__init__(services, name, provides="amphora_ids")

    def execute(self, loadbalancer_id: str) -> list[str]:
        with self.services.db.session(writer=True) as session:
            return live_amphora_ids(session, loadbalancer_id)


class Provide(task.Task):  # type: ignore[misc]
    """A fixed value under a name, for the subflow after it (scoped inputs)."""

    def __init__(self, name: str, provides: str, value: Any) -> None:
        super().__init__(name=name, provides=provides)
        self.value = value

    def execute(self) -> Any:
        return self.value


class ClearFence(ServiceTask):
    """The amphora fenced itself but is still a member (its load balancer's failover did not
    take it): it announces again (fencing.py)."""

    def execute(self, amphora_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            amp = session.get(Amphora, amphora_id)
            if amp is None or amp.status not in c.LIVE_AMPHORA_STATUSES:
                return  # replaced meanwhile: its host is reset instead
            target = (amp.id, amp.lb_network_ip)
        with self.services.agent(*target) as client:
            client.clear_fence()


class ResetHost(ServiceTask):
    """Reset a host that holds no amphora of ours, so it is offered again clean: one whose
    amphora was replaced while it was away and came back (fenced), or one out of the pool
    because it did not answer (tried again). A host that holds an amphora by now is left
    alone: its reset would take a live amphora down."""

    def execute(self, host_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            taken = host_pool.take_for_reset(session, host_id)
        if not taken:
            log.info("amphora host %s not reset: it holds an amphora, or is gone", host_id)
            return
        self.services.compute.delete(host_id)


class DeleteAmphorae(ServiceTask):
    """Remove the amphorae (compute) and mark them DELETED."""

    def execute(self, amphora_ids: list[str]) -> None:
        each(self.services.compute.delete, list(amphora_ids))
        with self.services.db.session(writer=True) as session:
            for amp in _amphorae(session, amphora_ids):
                amp.status = c.DELETED
                amp.load_balancer_id = None
            session.execute(delete(AmphoraHealth).where(AmphoraHealth.amphora_id.in_(amphora_ids)))
            # Nor does it run a speaker any more (the speaker may be deleted then).
            session.execute(
                delete(AmphoraBgpSpeakerRegistration).where(
                    AmphoraBgpSpeakerRegistration.amphora_id.in_(amphora_ids)
                )
            )


# -- HAProxy configuration ----------------------------------------------------------------


class PushHaproxyConfig(ServiceTask):
    """Render the load balancer's HAProxy configuration and push it to every amphora (each
    checks it and reloads without dropping established connections)."""

    def execute(self, loadbalancer_id: str, amphora_ids: list[str]) -> None:
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            assert lb is not None
            text = haproxy_config.render(lb, lb_addresses(session, lb))
            targets = [(a.id, a.lb_network_ip) for a in _amphorae(session, amphora_ids)]

        def push(target: tuple[str, str | None]) -> None:
            with self.services.agent(*target) as client:
                client.put_haproxy(loadbalancer_id, text)

        each(push, targets)


# -- load balancer deletion -------------------------------------------------------------------


class DeleteLoadBalancerRows(ServiceTask):
    def execute(self, loadbalancer_id: str) -> None:
        with self.services.db.session(writer=True) as session:
            lb = session.get(LoadBalancer, loadbalancer_id)
            if lb is None:
                return
            for pool in list(lb.pools):
                if pool.health_monitor is not None:
                    session.delete(pool.health_monitor)
                for member in list(pool.members):
                    session.delete(member)
            session.flush()
            for listener in list(lb.listeners):
                session.delete(listener)
            session.flush()
            for pool in list(lb.pools):
                session.delete(pool)
            session.flush()
            lb.provisioning_status = c.DELETED
            lb.operating_status = c.OFFLINE
            release_floating_ips(session, lb.id)
            if lb.vip is not None:  # the address is free again (the row keeps the subnet)
                lb.vip.ip_address = None
                lb.vip.port_id = None
                # Nor does a deleted load balancer hold its distributor (its delete is free).
                lb.vip.distributor_id = None
