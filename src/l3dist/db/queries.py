"""Queries the API, the worker and the health manager share (one definition each)."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import or_, select

from l3dist.common import constants as c
from l3dist.db.models import (
    Amphora,
    AmphoraBgpSpeakerRegistration,
    AmphoraHealth,
    FloatingIp,
    ListenerStatistics,
    LoadBalancer,
    Vip,
    VipRoute,
    VirtualIp,
    VirtualIpInterface,
    utcnow,
)


def live_amphora_ids(session: Any, loadbalancer_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Amphora.id)
            .where(
                Amphora.load_balancer_id == loadbalancer_id,
                Amphora.status.in_(c.LIVE_AMPHORA_STATUSES),
            )
            .order_by(Amphora.created_at)
        )
    )


def speaker_amphorae(session: Any, distributor_id: str) -> list[Amphora]:
    """The amphorae that run the distributor's BGP speakers, so the ones that announce its VIP
    routes (Register VIP). The one definition every caller uses. A dedicated distributor's:
    its distributor amphorae (service_type distributor, ``distributor_id`` set), which record
    their speaker registrations when they are built.

    Combined mode: the ALLOCATED amphorae of the load balancers on the distributor that
    recorded a speaker registration (Register Amphora, or the new-amphora step that announces
    the distributor's VIP routes, records it before it reads the routes: so a route made
    meanwhile is announced by one side or by both, never by neither), with a management
    address, and not being failed over by the health manager (busy: dead). Oldest first."""
    joined = select(AmphoraBgpSpeakerRegistration.amphora_id)
    dead = select(AmphoraHealth.amphora_id).where(AmphoraHealth.busy.is_(True))
    served = select(Vip.load_balancer_id).where(Vip.distributor_id == distributor_id)
    return list(
        session.scalars(
            select(Amphora)
            .where(
                # combined mode: its load balancers' amphorae; dedicated: its own amphorae
                # (the load-balancing ones then run no speaker: no speaker registration)
                or_(Amphora.load_balancer_id.in_(served), Amphora.distributor_id == distributor_id),
                Amphora.status == c.AMPHORA_ALLOCATED,
                Amphora.lb_network_ip.is_not(None),
                Amphora.id.in_(joined),
                Amphora.id.not_in(dead),
            )
            .order_by(Amphora.created_at, Amphora.id)
        )
    )


def live_vip_routes(session: Any, distributor_id: str) -> list[VipRoute]:
    """The distributor's VIP routes a speaker amphora must announce: all but those being
    deleted (a route still PENDING_CREATE is included: its own job may have read the speaker
    amphorae before a new one joined)."""
    return list(
        session.scalars(
            select(VipRoute)
            .where(
                VipRoute.distributor_id == distributor_id,
                VipRoute.provisioning_status.not_in((c.PENDING_DELETE, c.DELETED)),
            )
            .order_by(VipRoute.created_at, VipRoute.id)
        )
    )


FLOATING_ACTIVE, FLOATING_DOWN, FLOATING_ERROR = "ACTIVE", "DOWN", "ERROR"


def lb_addresses(session: Any, lb: LoadBalancer) -> list[str]:
    """The addresses a load balancer's amphorae announce and serve: its VIP first, then the
    floating IPs bound to its virtual-ip (by address). Every step that registers, drains or
    unregisters an amphora goes through this list, so a floating IP follows the amphorae
    without a step of its own."""
    if lb.vip is None or not lb.vip.ip_address:
        return []
    floating = session.scalars(
        select(FloatingIp.floating_ip_address)
        .join(VirtualIp, FloatingIp.virtual_ip_id == VirtualIp.id)
        .where(VirtualIp.load_balancer_id == lb.id)
        .order_by(FloatingIp.floating_ip_address)
    )
    return [str(lb.vip.ip_address), *floating]


def virtual_ip_of(session: Any, lb: LoadBalancer) -> VirtualIp:
    """The load balancer's virtual-ip, made on first use (its VIP and VIP port)."""
    found = session.scalar(select(VirtualIp).where(VirtualIp.load_balancer_id == lb.id))
    if found is None:
        vip = lb.vip
        found = VirtualIp(
            load_balancer_id=lb.id,
            vip_address=str(vip.ip_address) if vip is not None else "",
            vip_port_id=vip.port_id if vip is not None else None,
        )
        session.add(found)
        session.flush()
    return found  # type: ignore[no-any-return]


def bind_interface(
    session: Any, lb: LoadBalancer, amphora: Amphora, asked: datetime.datetime | None = None
) -> None:
    """An amphora registered for the load balancer: its front-end interface joins the
    virtual-ip (kept as it is when already there), timed from when its registration was asked
    (the router view's announce latency starts there)."""
    virtual_ip = virtual_ip_of(session, lb)
    if session.get(VirtualIpInterface, (virtual_ip.id, amphora.id)) is None:
        session.add(
            VirtualIpInterface(
                virtual_ip_id=virtual_ip.id,
                amphora_id=amphora.id,
                port_id=amphora.frontend_port_id,
                ip_address=amphora.frontend_ip or "",
                created_at=asked or utcnow(),
            )
        )


def unbind_interface(session: Any, loadbalancer_id: str, amphora_id: str) -> None:
    """An amphora unregistered from the load balancer leaves its virtual-ip."""
    virtual_ip = session.scalar(
        select(VirtualIp.id).where(VirtualIp.load_balancer_id == loadbalancer_id)
    )
    if virtual_ip is not None:
        row = session.get(VirtualIpInterface, (virtual_ip, amphora_id))
        if row is not None:
            session.delete(row)


def release_floating_ips(session: Any, loadbalancer_id: str) -> None:
    """A deleted load balancer's floating IPs are dissociated (as Neutron does when a port is
    deleted: the floating IP stays, DOWN, for the tenant to bind elsewhere), and its
    virtual-ip goes."""
    virtual_ip = session.scalar(
        select(VirtualIp).where(VirtualIp.load_balancer_id == loadbalancer_id)
    )
    if virtual_ip is None:
        return
    for fip in virtual_ip.floating_ips:
        fip.port_id = fip.fixed_ip_address = fip.virtual_ip_id = None
        fip.status = FLOATING_DOWN
    session.flush()
    session.delete(virtual_ip)


STATISTICS = ("active_connections", "bytes_in", "bytes_out", "request_errors", "total_connections")


def listener_statistics(session: Any, listener_ids: list[str]) -> dict[str, dict[str, int]]:
    """Octavia's listener stats for each listener id: the totals over every amphora that ever
    served it, the active connections over its live amphorae only (a failed-over amphora's last
    gauge is not current). Zeros for a listener no heartbeat reported yet."""
    stats = {listener_id: dict.fromkeys(STATISTICS, 0) for listener_id in listener_ids}
    live = select(Amphora.id).where(Amphora.status.in_(c.LIVE_AMPHORA_STATUSES))
    rows = session.execute(
        select(
            ListenerStatistics.listener_id,
            ListenerStatistics.amphora_id.in_(live),
            ListenerStatistics.active_connections,
            ListenerStatistics.bytes_in,
            ListenerStatistics.bytes_out,
            ListenerStatistics.request_errors,
            ListenerStatistics.total_connections,
        ).where(ListenerStatistics.listener_id.in_(listener_ids))
    )
    for listener_id, is_live, active, bytes_in, bytes_out, errors, total in rows:
        entry = stats[listener_id]
        entry["active_connections"] += active if is_live else 0
        entry["bytes_in"] += bytes_in
        entry["bytes_out"] += bytes_out
        entry["request_errors"] += errors
        entry["total_connections"] += total
    return stats
