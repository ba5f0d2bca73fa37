"""``/v2/octavia/virtual-ips``: the virtual-ip objects between floating IPs and amphorae, read
only. One per load balancer (made with its first floating IP binding or amphora registration):
the floating IPs bound to it and the amphora front-end interfaces that serve it, so an operator
sees where a floating IP's traffic goes without reading any amphora's state.

An admin sees every virtual-ip, a tenant those of its own load balancers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Select, select

from l3dist.api.common import (
    AppState,
    PlainJSONResponse,
    get_context,
    list_response,
    state,
    timestamp,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import not_found
from l3dist.api.query import ListSpec, select_fields
from l3dist.common import constants as c
from l3dist.db.models import LoadBalancer, VirtualIp

router = APIRouter()
PATH = "/v2/octavia/virtual-ips"

SPEC = ListSpec(
    plural="virtual_ips",
    id_column=VirtualIp.id,
    columns={
        "id": VirtualIp.id,
        "load_balancer_id": VirtualIp.load_balancer_id,
        "vip_address": VirtualIp.vip_address,
        "vip_port_id": VirtualIp.vip_port_id,
        "created_at": VirtualIp.created_at,
        "updated_at": VirtualIp.updated_at,
    },
)


def virtual_ip_dict(vip: VirtualIp) -> dict[str, Any]:
    return {
        "id": vip.id,
        "load_balancer_id": vip.load_balancer_id,
        "vip_address": vip.vip_address,
        "vip_port_id": vip.vip_port_id,
        "floating_ips": [
            {"id": f.id, "floating_ip_address": f.floating_ip_address} for f in vip.floating_ips
        ],
        "interfaces": [
            {"amphora_id": i.amphora_id, "port_id": i.port_id, "ip_address": i.ip_address}
            for i in vip.interfaces
        ],
        "created_at": timestamp(vip.created_at),
        "updated_at": timestamp(vip.updated_at),
    }


def _query() -> Select[Any]:
    return (
        select(VirtualIp)
        .join(LoadBalancer, LoadBalancer.id == VirtualIp.load_balancer_id)
        .where(LoadBalancer.provisioning_status != c.DELETED)
    )


@router.get(PATH, tags=["virtual-ips"])
def list_virtual_ips(
    request: Request, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> PlainJSONResponse:
    return list_response(request, app, ctx, _query(), SPEC, virtual_ip_dict,
                         LoadBalancer.project_id)  # fmt: skip


@router.get(f"{PATH}/{{virtual_ip_id}}", tags=["virtual-ips"])
def show_virtual_ip(
    virtual_ip_id: str,
    request: Request,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_read()
    stmt = _query().where(VirtualIp.id == virtual_ip_id)
    if not ctx.is_admin:
        stmt = stmt.where(LoadBalancer.project_id == ctx.project_id)
    with app.db.session(writer=False) as session:
        vip = session.scalar(stmt)
        if vip is None:
            raise not_found("Virtual IP", virtual_ip_id)
        return {"virtual_ip": select_fields(virtual_ip_dict(vip), request.query_params)}
