"""Queries the API, the worker and the health manager share (one definition each)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from l3dist.common import constants as c
from l3dist.db.models import Amphora, AmphoraBgpSpeakerRegistration, AmphoraHealth, Vip, VipRoute


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
