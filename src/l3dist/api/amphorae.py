"""``/v2/octavia/amphorae`` (admin): the amphorae, their service type and front-end port."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from l3dist.api.common import (
    AppState,
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
from l3dist.controller import jobs
from l3dist.db.models import Amphora

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
        "frontend_ip": Amphora.frontend_ip,
        "frontend_subnet_id": Amphora.frontend_subnet_id,
        "created_at": Amphora.created_at,
        "updated_at": Amphora.updated_at,
    },
)


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
        "service_type": amp.service_type,
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
) -> dict[str, Any]:
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
        jobs.submit(session, jobs.FAILOVER_AMPHORA, amp.load_balancer_id, amphora_id=amp.id)
    return Response(status_code=202)
