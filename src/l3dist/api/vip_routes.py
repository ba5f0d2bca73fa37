"""``/v2/lbaas/distributors/{distributor_id}/vips``: VIP routes, the spec's Register VIP /
Unregister VIP / List VIP (P2) as a tenant resource. A route announces ``vip_ip`` (an anycast
address) with ``nexthop_ip`` (an endpoint on the front end that is not an amphora, e.g. a UDP
server) from every amphora that runs the distributor's speakers, to ``peer_id`` or to every peer
of the VIP's family.

Create and delete only queue a worker job (create_vip_route / delete_vip_route) in the same
transaction as the status change; the worker calls the agents. The VIP's address is reserved in
the network driver's IPAM (one reservation per project, distributor and vip_ip, shared by that
VIP's routes) so no load balancer is handed it; the worker releases it with the last route.
"""

from __future__ import annotations

import contextlib
import uuid
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from l3dist.api.common import (
    AppState,
    Body,
    PlainJSONResponse,
    check_project,
    get_context,
    get_owned,
    list_response,
    state,
    timestamp,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import conflict, immutable, not_found
from l3dist.api.fields import Id, IPAddress, Name
from l3dist.api.query import ListSpec, select_fields
from l3dist.api.vip_route_checks import check_addresses, check_distributor, check_records
from l3dist.common import constants as c
from l3dist.db import jobs
from l3dist.db.models import Distributor, VipRoute
from l3dist.network.exceptions import AllocateVIPException, NetworkException

router = APIRouter()
PATH = "/v2/lbaas/distributors/{distributor_id}/vips"
# Reservation ids: one per project, distributor and vip_ip (the VIP's routes share it).
RESERVATION_NAMESPACE = uuid.UUID("5d0f3c5e-9b7a-4f43-9b1e-2f4f1c6a7d21")


class VipRouteCreate(Body):
    name: Name | None = None
    description: Name | None = None
    project_id: Id | None = None
    vip_ip: IPAddress
    nexthop_ip: IPAddress
    peer_id: Id | None = None


class VipRouteCreateRequest(Body):
    vip: VipRouteCreate


SPEC = ListSpec(
    plural="vips",
    id_column=VipRoute.id,
    columns={
        "id": VipRoute.id,
        "name": VipRoute.name,
        "project_id": VipRoute.project_id,
        "vip_ip": VipRoute.vip_ip,
        "nexthop_ip": VipRoute.nexthop_ip,
        "peer_id": VipRoute.distributor_l3_bgp_peer_id,
        "provisioning_status": VipRoute.provisioning_status,
        "operating_status": VipRoute.operating_status,
        "created_at": VipRoute.created_at,
        "updated_at": VipRoute.updated_at,
    },
)


def route_dict(route: VipRoute) -> dict[str, Any]:
    """The route as the API shows it; ``status_reason`` says why it is ERROR (its last failed
    job's error, as a load balancer's status tree does), else null."""
    session = object_session(route)
    reason = (
        jobs.last_failure(session, route.id)
        if session is not None and route.provisioning_status == c.ERROR
        else None
    )
    return {
        "id": route.id,
        "name": route.name or "",
        "description": route.description or "",
        "project_id": route.project_id,
        "distributor_id": route.distributor_id,
        "vip_ip": route.vip_ip,
        "nexthop_ip": route.nexthop_ip,
        "peer_id": route.distributor_l3_bgp_peer_id,
        "provisioning_status": route.provisioning_status,
        "operating_status": route.operating_status,
        "status_reason": reason,
        "created_at": timestamp(route.created_at),
        "updated_at": timestamp(route.updated_at),
    }


def _distributor(
    session: Session, distributor_id: str, ctx: RequestContext, lock: bool = False
) -> Distributor:
    """The route's distributor (404 distributor_id). lock: its row is locked until the
    transaction ends (PostgreSQL; SQLite writers take the database lock at BEGIN), so two
    requests for the same route, or a route and a change of the distributor, do not both win."""
    if lock:
        session.get(Distributor, distributor_id, with_for_update=True)
    return get_owned(session, Distributor, distributor_id, ctx, "Distributor", "distributor_id")


def _reserve(app: AppState, project_id: str, distributor_id: str, subnet_id: str, vip: str) -> Any:
    """The network driver's reservation of the VIP address (idempotent: the VIP's other
    routes hold the same one); 409 vip_ip when anything else holds the address."""
    key = uuid.uuid5(RESERVATION_NAMESPACE, f"{project_id}/{distributor_id}/{vip}")
    view = SimpleNamespace(id=str(key), vip=SimpleNamespace(subnet_id=subnet_id, ip_address=vip))
    try:
        return app.network.allocate_vip(view)
    except AllocateVIPException as exc:
        raise conflict(f"vip_ip {vip} cannot be used: {exc}", "vip_ip") from None


@router.post(PATH, status_code=201, tags=["vip-routes"])
def create_vip_route(
    distributor_id: str,
    body: VipRouteCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.vip
    project_id = check_project(ctx, req.project_id)
    vip, nexthop = str(req.vip_ip), str(req.nexthop_ip)
    with app.db.session(writer=False) as session:
        distributor = _distributor(session, distributor_id, ctx)
    check_distributor(distributor)  # first: the addresses are checked for an ACTIVE one only
    checked = check_addresses(app, distributor, req.vip_ip, req.nexthop_ip)
    with app.db.session(writer=False) as session:
        check_records(session, project_id, distributor, req.vip_ip, req.nexthop_ip, req.peer_id)
        shared = session.scalar(
            select(VipRoute.id)
            .where(VipRoute.project_id == project_id, VipRoute.distributor_id == distributor.id,
                   VipRoute.vip_ip == vip)
            .limit(1)
        )  # fmt: skip
    reservation = _reserve(app, project_id, distributor_id, checked.vip_subnet.id, vip)
    try:
        with app.db.session() as session:
            # Again, with the distributor locked: another request may have won meanwhile.
            distributor = _distributor(session, distributor_id, ctx, lock=True)
            check_records(session, project_id, distributor, req.vip_ip, req.nexthop_ip, req.peer_id)
            route = VipRoute(
                project_id=project_id,
                name=req.name,
                description=req.description,
                distributor_id=distributor_id,
                vip_ip=vip,
                nexthop_ip=nexthop,
                distributor_l3_bgp_peer_id=req.peer_id,
                port_id=reservation.port_id,
                provisioning_status=c.PENDING_CREATE,
                operating_status=c.OFFLINE,
            )
            session.add(route)
            session.flush()
            jobs.submit(session, jobs.CREATE_VIP_ROUTE, route.id)
            return {"vip": route_dict(route)}
    except BaseException as exc:
        if shared is None:  # nothing half-made: a reservation this request made goes with it
            with contextlib.suppress(NetworkException):
                app.network.deallocate_vip(reservation)
        if isinstance(exc, IntegrityError):
            raise conflict(f"vip_ip {vip} cannot be routed now: {exc.orig}", "vip_ip") from None
        raise


@router.get(PATH, tags=["vip-routes"])
def list_vip_routes(
    distributor_id: str,
    request: Request,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> PlainJSONResponse:
    ctx.require_read()
    with app.db.session() as session:
        _distributor(session, distributor_id, ctx)
    stmt = select(VipRoute).where(
        VipRoute.distributor_id == distributor_id, VipRoute.provisioning_status != c.DELETED
    )
    return list_response(request, app, ctx, stmt, SPEC, route_dict, VipRoute.project_id)


def _owned_route(
    session: Session, distributor_id: str, route_id: str, ctx: RequestContext
) -> VipRoute:
    """The caller's route on that distributor (another project's is 404, as if absent)."""
    _distributor(session, distributor_id, ctx)
    route = get_owned(session, VipRoute, route_id, ctx, "VIP route")
    if route.distributor_id != distributor_id:
        raise not_found("VIP route", route_id)
    return route


@router.get(f"{PATH}/{{route_id}}", tags=["vip-routes"])
def show_vip_route(
    distributor_id: str,
    route_id: str,
    request: Request,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_read()
    with app.db.session() as session:
        route = _owned_route(session, distributor_id, route_id, ctx)
        return {"vip": select_fields(route_dict(route), request.query_params)}


@router.delete(f"{PATH}/{{route_id}}", status_code=204, tags=["vip-routes"])
def delete_vip_route(
    distributor_id: str,
    route_id: str,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> Response:
    """Unregister VIP everywhere (a worker job); an ERROR route may be deleted (what it left
    announced is withdrawn), a pending one not (409)."""
    ctx.require_write()
    with app.db.session() as session:
        route = _owned_route(session, distributor_id, route_id, ctx)
        locked = session.execute(
            update(VipRoute)
            .where(VipRoute.id == route.id,
                   VipRoute.provisioning_status.in_((c.ACTIVE, c.ERROR)))
            .values(provisioning_status=c.PENDING_DELETE)
            .execution_options(synchronize_session="fetch")
        )  # fmt: skip
        if getattr(locked, "rowcount", 0) != 1:
            raise immutable("VIP route", route.id)
        jobs.submit(session, jobs.DELETE_VIP_ROUTE, route.id)
    return Response(status_code=204)
