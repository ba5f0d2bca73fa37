"""``/v2/octavia/amphorae`` (admin): the amphorae, their service type and front-end port, and
the actions on one amphora: failover (the replacement first, then the old one drained) and drain
(Drain Amphora: withdrawn, its connections finish, then removed; the cluster shrinks by one)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import object_session

from l3dist.api.common import (
    AppState,
    PlainJSONResponse,
    get_context,
    list_response,
    lock_load_balancer,
    state,
    timestamp,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request, not_found
from l3dist.api.query import ListSpec, select_fields
from l3dist.common import constants as c
from l3dist.db import jobs
from l3dist.db.models import Amphora, AmphoraRegistration, LoadBalancer

router = APIRouter()

LIST_SPEC = ListSpec(
    plural="amphorae",
    id_column=Amphora.id,
    columns={
        "id": Amphora.id,
        "loadbalancer_id": Amphora.load_balancer_id,
        "compute_id": Amphora.compute_id,
        "status": Amphora.status,
        "role": Amphora.role,
        "lb_network_ip": Amphora.lb_network_ip,
        "ha_ip": Amphora.ha_ip,
        "service_type": Amphora.service_type,
        "distributor_id": Amphora.distributor_id,
        "frontend_ip": Amphora.frontend_ip,
        "frontend_subnet_id": Amphora.frontend_subnet_id,
        "created_at": Amphora.created_at,
        "updated_at": Amphora.updated_at,
    },
)


def operating_status(amp: Amphora) -> str:
    """DRAINING while a drain runs, ONLINE while the VIP is announced through it, else OFFLINE."""
    if amp.drain_started_at is not None:
        return c.DRAINING
    session = object_session(amp)
    registered = (
        amp.load_balancer_id is not None
        and session is not None
        and session.get(AmphoraRegistration, (amp.id, amp.load_balancer_id)) is not None
    )
    return c.ONLINE if registered else c.OFFLINE


def to_dict(amp: Amphora) -> dict[str, Any]:
    return {
        "id": amp.id,
        "loadbalancer_id": amp.load_balancer_id,
        "compute_id": amp.compute_id,
        "lb_network_ip": amp.lb_network_ip,
        "ha_ip": amp.ha_ip,
        "ha_port_id": amp.ha_port_id,
        "cert_expiration": timestamp(amp.cert_expiration),
        "cert_busy": amp.cert_busy,
        "role": amp.role,
        "status": amp.status,
        "operating_status": operating_status(amp),
        "drain_started_at": timestamp(amp.drain_started_at),
        "service_type": amp.service_type,
        "distributor_id": amp.distributor_id,  # a dedicated distributor's amphora
        "frontend_ip": amp.frontend_ip,
        "frontend_subnet_id": amp.frontend_subnet_id,
        "frontend_port_id": amp.frontend_port_id,
        "frontend_interface": amp.frontend_interface,
        "frontend_id": amp.frontend_id,
        "frontend_priority": amp.frontend_priority,
        "cached_zone": amp.cached_zone,
        "image_id": amp.image_id,
        "compute_flavor": amp.compute_flavor,
        "created_at": timestamp(amp.created_at),
        "updated_at": timestamp(amp.updated_at),
    }


@router.get("/v2/octavia/amphorae", tags=["amphorae"])
def list_amphorae(
    request: Request, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> PlainJSONResponse:
    ctx.require_admin()
    stmt = select(Amphora).where(Amphora.status != c.DELETED)
    return list_response(request, app, ctx, stmt, LIST_SPEC, to_dict)


def _amphora(app_session: Any, amphora_id: str) -> Amphora:
    amp = app_session.get(Amphora, amphora_id)
    if amp is None or amp.status == c.DELETED:
        raise not_found("Amphora", amphora_id)
    return amp  # type: ignore[no-any-return]


@router.get("/v2/octavia/amphorae/{amphora_id}", tags=["amphorae"])
def show_amphora(
    amphora_id: str,
    request: Request,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    with app.db.session() as session:
        return {
            "amphora": select_fields(to_dict(_amphora(session, amphora_id)), request.query_params)
        }


@router.put("/v2/octavia/amphorae/{amphora_id}/failover", status_code=202, tags=["amphorae"])
def failover_amphora(
    amphora_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_admin()
    with app.db.session() as session:
        amp = _amphora(session, amphora_id)
        if amp.load_balancer_id is None:
            raise bad_request(
                f"Amphora {amp.id} serves no load balancer: nothing to fail over", "amphora_id"
            )
        lock_load_balancer(session, amp.load_balancer_id)
        jobs.submit(
            session, jobs.FAILOVER_AMPHORA, amp.load_balancer_id, amphora_id=amp.id, drain=True
        )
    return Response(status_code=202)


@router.put("/v2/octavia/amphorae/{amphora_id}/drain", status_code=202, tags=["amphorae"])
def drain_amphora(
    amphora_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    """Drain Amphora (spec P2): its route is withdrawn, its established connections finish (or
    the drain timeout expires), then it is removed; the load balancer's amphora_count drops by
    one. New flows go to the other amphorae from the first moment."""
    ctx.require_admin()
    with app.db.session() as session:
        amp = _amphora(session, amphora_id)
        lb = session.get(LoadBalancer, amp.load_balancer_id) if amp.load_balancer_id else None
        if lb is None or amp.status not in c.LIVE_AMPHORA_STATUSES:
            raise bad_request(
                f"Amphora {amp.id} serves no load balancer: nothing to drain", "amphora_id"
            )
        if lb.topology != c.TOPOLOGY_ACTIVE_ACTIVE or lb.amphora_count <= 1:
            raise bad_request(
                f"Amphora {amp.id} is the only amphora of load balancer {lb.id}: no other "
                "amphora would take its flows (delete the load balancer instead)",
                "amphora_id",
            )
        lock_load_balancer(session, lb.id)
        session.refresh(lb)
        lb.amphora_count -= 1
        jobs.submit(
            session,
            jobs.SCALE_LOAD_BALANCER,
            lb.id,
            amphora_count=lb.amphora_count,
            remove=[amp.id],
        )
    return Response(status_code=202)
