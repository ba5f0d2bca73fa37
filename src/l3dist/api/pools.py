"""``/v2/lbaas/pools`` and ``/v2/lbaas/pools/{pool_id}/members``."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field, StrictBool, StrictInt, model_validator
from sqlalchemy import select

from l3dist.api.children import (
    apply_common_update,
    base_fields,
    mark,
)
from l3dist.api.common import (
    AppState,
    Body,
    PlainJSONResponse,
    ReadRoutes,
    claim_id,
    commit_or_conflict,
    get_context,
    get_owned,
    list_response,
    state,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request, conflict, not_found
from l3dist.api.fields import Id, IPAddress, Name, Port, Tag
from l3dist.api.query import ListSpec, parse_bool, select_fields
from l3dist.common import constants as c
from l3dist.db.models import Listener, LoadBalancer, Member, Pool
from l3dist.network.exceptions import SubnetNotFound

router = APIRouter()


CookieName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\w!#$%&'*+.^`|~-]+$")]


class SessionPersistence(Body):
    type: Literal["SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"]
    cookie_name: CookieName | None = None
    persistence_timeout: Annotated[StrictInt, Field(ge=1, le=86400)] | None = None
    persistence_granularity: Annotated[str, Field(max_length=64)] | None = None

    @model_validator(mode="after")
    def _cookie(self) -> SessionPersistence:
        if self.type == "APP_COOKIE" and not self.cookie_name:
            raise ValueError("cookie_name is required for APP_COOKIE")
        if self.type != "APP_COOKIE" and self.cookie_name:
            raise ValueError("cookie_name is only valid for APP_COOKIE")
        return self


class PoolFields(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: StrictBool | None = None
    lb_algorithm: Literal["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"] | None = None
    session_persistence: SessionPersistence | None = None
    tls_enabled: Literal[False] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)


class PoolBody(PoolFields):
    """A new pool's fields, without where it goes (a fully populated load balancer create
    nests these)."""

    # Chosen by an admin or a service (Octavia's provider driver: the same id in both).
    id: uuid.UUID | None = None
    protocol: Literal["HTTP", "HTTPS", "TCP", "PROXY"]
    lb_algorithm: Literal["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"]
    project_id: Id | None = None


class PoolCreate(PoolBody):
    loadbalancer_id: Id | None = None
    listener_id: Id | None = None


class PoolCreateRequest(Body):
    pool: PoolCreate


class PoolUpdateRequest(Body):
    pool: PoolFields


POOL_SPEC = ListSpec(
    plural="pools",
    id_column=Pool.id,
    columns={
        "id": Pool.id,
        "name": Pool.name,
        "description": Pool.description,
        "project_id": Pool.project_id,
        "protocol": Pool.protocol,
        "lb_algorithm": Pool.lb_algorithm,
        "loadbalancer_id": Pool.load_balancer_id,
        "admin_state_up": Pool.enabled,
        "provisioning_status": Pool.provisioning_status,
        "operating_status": Pool.operating_status,
        "created_at": Pool.created_at,
        "updated_at": Pool.updated_at,
    },
    converters={"admin_state_up": parse_bool},
)


def pool_dict(pool: Pool) -> dict[str, Any]:
    hm = pool.health_monitor
    return {
        **base_fields(pool),
        "protocol": pool.protocol,
        "lb_algorithm": pool.lb_algorithm,
        "session_persistence": pool.session_persistence,
        "loadbalancers": [{"id": pool.load_balancer_id}],
        "listeners": [
            {"id": li.id} for li in pool.listeners if li.provisioning_status != c.DELETED
        ],
        "members": [{"id": m.id} for m in pool.members if m.provisioning_status != c.DELETED],
        "healthmonitor_id": hm.id if hm and hm.provisioning_status != c.DELETED else None,
        "tls_enabled": False,
        "tls_container_ref": None,
        "ca_tls_container_ref": None,
        "crl_container_ref": None,
        "tls_ciphers": None,
        "tls_versions": None,
        "alpn_protocols": None,
    }


def new_pool(session: Any, lb: LoadBalancer, req: PoolBody, ctx: RequestContext) -> Pool:
    """A PENDING_CREATE pool of lb (not yet added to the session), or 4xx naming the field."""
    if req.project_id and req.project_id != lb.project_id:
        raise bad_request("project_id must be the load balancer's project", "project_id")
    return Pool(
        **claim_id(session, Pool, req.id, ctx),
        project_id=lb.project_id,
        load_balancer_id=lb.id,
        protocol=req.protocol,
        lb_algorithm=req.lb_algorithm,
        name=req.name,
        description=req.description,
        enabled=True if req.admin_state_up is None else req.admin_state_up,
        session_persistence=(
            req.session_persistence.model_dump(exclude_none=True)
            if req.session_persistence
            else None
        ),
        tags=req.tags or [],
        provisioning_status=c.PENDING_CREATE,
        operating_status=c.OFFLINE,
    )


@router.post("/v2/lbaas/pools", status_code=201, tags=["pools"])
def create_pool(
    body: PoolCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.pool
    if not req.loadbalancer_id and not req.listener_id:
        raise bad_request("one of loadbalancer_id or listener_id is required", "loadbalancer_id")

    def work(session: Any) -> dict[str, Any]:
        listener = None
        if req.listener_id:
            listener = get_owned(session, Listener, req.listener_id, ctx, "Listener", "listener_id")
            if req.loadbalancer_id and req.loadbalancer_id != listener.load_balancer_id:
                raise bad_request(
                    f"listener_id {listener.id} is not on loadbalancer_id {req.loadbalancer_id}",
                    "listener_id",
                )
            if listener.default_pool_id:
                raise conflict(
                    f"Listener {listener.id} already has default pool {listener.default_pool_id}",
                    "listener_id",
                )
            if req.protocol not in c.VALID_LISTENER_POOL_PROTOCOLS[listener.protocol]:
                raise bad_request(
                    f"protocol: a {listener.protocol} listener cannot use a {req.protocol} pool",
                    "protocol",
                )
        lb_id = req.loadbalancer_id or (listener.load_balancer_id if listener else "")
        lb = get_owned(session, LoadBalancer, lb_id, ctx, "Load Balancer", "loadbalancer_id")
        pool = new_pool(session, lb, req, ctx)
        mark(pool, lb.id, session, c.PENDING_CREATE)
        session.add(pool)
        session.flush()
        if listener is not None:
            listener.default_pool_id = pool.id
            session.flush()
        session.refresh(pool)
        return {"pool": pool_dict(pool)}

    return commit_or_conflict(app, work, "the pool conflicts with another object", "listener_id")


ReadRoutes(
    path="/v2/lbaas/pools",
    id_param="pool_id",
    model=Pool,
    key="pool",
    kind="Pool",
    spec=POOL_SPEC,
    to_dict=pool_dict,
    tag="pools",
).add_to(router)


@router.put("/v2/lbaas/pools/{pool_id}", tags=["pools"])
def update_pool(
    pool_id: str,
    body: PoolUpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.pool
    with app.db.session() as session:
        pool = get_owned(session, Pool, pool_id, ctx, "Pool")
        mark(pool, pool.load_balancer_id, session, c.PENDING_UPDATE)
        apply_common_update(pool, req)
        if req.lb_algorithm is not None:
            pool.lb_algorithm = req.lb_algorithm
        if req.session_persistence is not None:
            pool.session_persistence = req.session_persistence.model_dump(exclude_none=True)
        session.flush()
        return {"pool": pool_dict(pool)}


@router.delete("/v2/lbaas/pools/{pool_id}", status_code=204, tags=["pools"])
def delete_pool(
    pool_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_write()
    with app.db.session() as session:
        pool = get_owned(session, Pool, pool_id, ctx, "Pool")
        mark(pool, pool.load_balancer_id, session, c.PENDING_DELETE)
    return Response(status_code=204)


# -- members --------------------------------------------------------------------------------


class MemberFields(Body):
    name: Name | None = None
    admin_state_up: StrictBool | None = None
    weight: Annotated[StrictInt, Field(ge=0, le=256)] | None = None
    backup: StrictBool | None = None
    monitor_address: IPAddress | None = None
    monitor_port: Port | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)


class MemberCreate(MemberFields):
    # Chosen by an admin or a service (Octavia's provider driver: the same id in both).
    id: uuid.UUID | None = None
    address: IPAddress
    protocol_port: Port
    subnet_id: Id | None = None
    project_id: Id | None = None


class MemberCreateRequest(Body):
    member: MemberCreate


class MemberUpdateRequest(Body):
    member: MemberFields


MEMBER_SPEC = ListSpec(
    plural="members",
    id_column=Member.id,
    columns={
        "id": Member.id,
        "name": Member.name,
        "project_id": Member.project_id,
        "address": Member.ip_address,
        "protocol_port": Member.protocol_port,
        "weight": Member.weight,
        "backup": Member.backup,
        "subnet_id": Member.subnet_id,
        "admin_state_up": Member.enabled,
        "provisioning_status": Member.provisioning_status,
        "operating_status": Member.operating_status,
        "created_at": Member.created_at,
        "updated_at": Member.updated_at,
    },
    converters={
        "admin_state_up": parse_bool,
        "backup": parse_bool,
        "protocol_port": int,
        "weight": int,
    },
)


def member_dict(member: Member) -> dict[str, Any]:
    data = base_fields(member)
    data.pop("description")
    return {
        **data,
        "address": member.ip_address,
        "protocol_port": member.protocol_port,
        "weight": member.weight,
        "backup": member.backup,
        "subnet_id": member.subnet_id,
        "monitor_address": member.monitor_address,
        "monitor_port": member.monitor_port,
    }


def get_pool(session: Any, pool_id: str, ctx: RequestContext) -> Pool:
    return get_owned(session, Pool, pool_id, ctx, "Pool")


def _member(session: Any, pool: Pool, member_id: str, ctx: RequestContext) -> Member:
    member = get_owned(session, Member, member_id, ctx, "Member")
    if member.pool_id != pool.id:
        raise not_found("Member", member_id)
    return member


def check_member_address(app: AppState, req: MemberCreate) -> str:
    """The member's address, checked against its subnet (if named): 400 naming the field."""
    address = str(req.address)
    if req.subnet_id:
        try:
            subnet = app.network.get_subnet(req.subnet_id)
        except SubnetNotFound:
            raise not_found("Subnet", req.subnet_id, "subnet_id") from None
        if not subnet.contains(address):
            raise bad_request(
                f"address {address} is not in subnet_id {subnet.id} ({subnet.cidr})", "address"
            )
    if ipaddress.ip_address(address).is_loopback or ipaddress.ip_address(address).is_multicast:
        raise bad_request(f"address {address} cannot be a member address", "address")
    return address


def new_member(session: Any, pool: Pool, req: MemberCreate, ctx: RequestContext) -> Member:
    """A member of pool (not yet added to the session), or 4xx; its address checked first."""
    address = str(req.address)
    if req.project_id and req.project_id != pool.project_id:
        raise bad_request("project_id must be the pool's project", "project_id")
    duplicate = session.scalar(
        select(Member.id).where(
            Member.pool_id == pool.id,
            Member.ip_address == address,
            Member.protocol_port == req.protocol_port,
            Member.provisioning_status != c.DELETED,
        )
    )
    if duplicate:
        raise conflict(
            f"Another member {duplicate} on this pool already uses {address}:{req.protocol_port}",
            "address",
        )
    return Member(
        **claim_id(session, Member, req.id, ctx),
        project_id=pool.project_id,
        pool_id=pool.id,
        ip_address=address,
        protocol_port=req.protocol_port,
        subnet_id=req.subnet_id,
        name=req.name,
        enabled=True if req.admin_state_up is None else req.admin_state_up,
        weight=1 if req.weight is None else req.weight,
        backup=bool(req.backup),
        monitor_address=str(req.monitor_address) if req.monitor_address else None,
        monitor_port=req.monitor_port,
        tags=req.tags or [],
        operating_status=c.NO_MONITOR,
    )


def apply_member_update(member: Member, req: MemberFields) -> None:
    apply_common_update(member, req)
    for name in ("weight", "backup", "monitor_port"):
        value = getattr(req, name)
        if value is not None:
            setattr(member, name, value)
    if req.monitor_address is not None:
        member.monitor_address = str(req.monitor_address)


@router.post("/v2/lbaas/pools/{pool_id}/members", status_code=201, tags=["members"])
def create_member(
    pool_id: str,
    body: MemberCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.member
    address = check_member_address(app, req)

    def work(session: Any) -> dict[str, Any]:
        pool = get_pool(session, pool_id, ctx)
        member = new_member(session, pool, req, ctx)
        mark(member, pool.load_balancer_id, session, c.PENDING_CREATE)
        session.add(member)
        session.flush()
        return {"member": member_dict(member)}

    return commit_or_conflict(
        app, work, f"{address}:{req.protocol_port} is already a member", "address"
    )


@router.get("/v2/lbaas/pools/{pool_id}/members", tags=["members"])
def list_members(
    pool_id: str,
    request: Request,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> PlainJSONResponse:
    ctx.require_read()
    with app.db.session() as session:
        get_pool(session, pool_id, ctx)
    stmt = select(Member).where(Member.pool_id == pool_id, Member.provisioning_status != c.DELETED)
    return list_response(request, app, ctx, stmt, MEMBER_SPEC, member_dict, Member.project_id)


@router.get("/v2/lbaas/pools/{pool_id}/members/{member_id}", tags=["members"])
def show_member(
    pool_id: str,
    member_id: str,
    request: Request,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_read()
    with app.db.session() as session:
        member = _member(session, get_pool(session, pool_id, ctx), member_id, ctx)
        return {"member": select_fields(member_dict(member), request.query_params)}


@router.put("/v2/lbaas/pools/{pool_id}/members/{member_id}", tags=["members"])
def update_member(
    pool_id: str,
    member_id: str,
    body: MemberUpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.member
    with app.db.session() as session:
        pool = get_pool(session, pool_id, ctx)
        member = _member(session, pool, member_id, ctx)
        mark(member, pool.load_balancer_id, session, c.PENDING_UPDATE)
        apply_member_update(member, req)
        session.flush()
        return {"member": member_dict(member)}


@router.delete("/v2/lbaas/pools/{pool_id}/members/{member_id}", status_code=204, tags=["members"])
def delete_member(
    pool_id: str,
    member_id: str,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> Response:
    ctx.require_write()
    with app.db.session() as session:
        pool = get_pool(session, pool_id, ctx)
        member = _member(session, pool, member_id, ctx)
        mark(member, pool.load_balancer_id, session, c.PENDING_DELETE)
    return Response(status_code=204)
