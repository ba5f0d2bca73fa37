"""``/v2/lbaas/listeners`` (Octavia's fields for TCP and HTTP load balancing)."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import Field, StrictBool, StrictInt, field_validator
from sqlalchemy import select

from l3dist.api.children import (
    apply_common_update,
    base_fields,
    mark,
)
from l3dist.api.common import (
    AppState,
    Body,
    ReadRoutes,
    claim_id,
    commit_or_conflict,
    get_context,
    get_owned,
    state,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request, conflict
from l3dist.api.fields import Id, Name, Port, Tag
from l3dist.api.query import ListSpec, parse_bool
from l3dist.common import constants as c
from l3dist.db.models import Listener, LoadBalancer, Pool

router = APIRouter()

TimeoutMs = Annotated[StrictInt, Field(ge=0, le=31536000000)]
INSERT_HEADERS = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto", "X-Forwarded-Host")
DEFAULT_TIMEOUTS = {
    "timeout_client_data": 50000,
    "timeout_member_connect": 5000,
    "timeout_member_data": 50000,
    "timeout_tcp_inspect": 0,
}


class ListenerFields(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: StrictBool | None = None
    connection_limit: Annotated[StrictInt, Field(ge=-1, le=1000000)] | None = None
    default_pool_id: Id | None = None
    insert_headers: dict[str, Annotated[str, Field(max_length=255)]] | None = None
    timeout_client_data: TimeoutMs | None = None
    timeout_member_connect: TimeoutMs | None = None
    timeout_member_data: TimeoutMs | None = None
    timeout_tcp_inspect: TimeoutMs | None = None
    allowed_cidrs: list[Annotated[str, Field(max_length=64)]] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)

    @field_validator("insert_headers")
    @classmethod
    def _known_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for header in value or {}:
            if header not in INSERT_HEADERS:
                raise ValueError(f"{header} is not one of {', '.join(INSERT_HEADERS)}")
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        try:
            return [str(ipaddress.ip_network(cidr, strict=False)) for cidr in value]
        except ValueError as exc:
            raise ValueError(str(exc)) from None


class ListenerBody(ListenerFields):
    """A new listener's fields, without its load balancer (a fully populated load balancer
    create nests these)."""

    # Chosen by an admin or a service (Octavia's provider driver: the same id in both).
    id: uuid.UUID | None = None
    protocol: Literal["HTTP", "HTTPS", "TCP"]
    protocol_port: Port
    project_id: Id | None = None


class ListenerCreate(ListenerBody):
    loadbalancer_id: Id


class CreateRequest(Body):
    listener: ListenerCreate


class UpdateRequest(Body):
    listener: ListenerFields


LIST_SPEC = ListSpec(
    plural="listeners",
    id_column=Listener.id,
    columns={
        "id": Listener.id,
        "name": Listener.name,
        "description": Listener.description,
        "project_id": Listener.project_id,
        "protocol": Listener.protocol,
        "protocol_port": Listener.protocol_port,
        "connection_limit": Listener.connection_limit,
        "default_pool_id": Listener.default_pool_id,
        "loadbalancer_id": Listener.load_balancer_id,
        "admin_state_up": Listener.enabled,
        "provisioning_status": Listener.provisioning_status,
        "operating_status": Listener.operating_status,
        "created_at": Listener.created_at,
        "updated_at": Listener.updated_at,
    },
    converters={"admin_state_up": parse_bool, "protocol_port": int, "connection_limit": int},
)


def to_dict(listener: Listener) -> dict[str, Any]:
    return {
        **base_fields(listener),
        "protocol": listener.protocol,
        "protocol_port": listener.protocol_port,
        "connection_limit": listener.connection_limit,
        "default_pool_id": listener.default_pool_id,
        "loadbalancers": [{"id": listener.load_balancer_id}],
        "l7policies": [],
        "insert_headers": listener.insert_headers or {},
        "timeout_client_data": listener.timeout_client_data,
        "timeout_member_connect": listener.timeout_member_connect,
        "timeout_member_data": listener.timeout_member_data,
        "timeout_tcp_inspect": listener.timeout_tcp_inspect,
        "allowed_cidrs": listener.allowed_cidrs,
        "default_tls_container_ref": None,
        "sni_container_refs": [],
        "client_ca_tls_container_ref": None,
        "client_authentication": "NONE",
        "client_crl_container_ref": None,
        "tls_ciphers": None,
        "tls_versions": None,
        "alpn_protocols": None,
        "hsts_max_age": None,
        "hsts_include_subdomains": False,
        "hsts_preload": False,
    }


def _check_fields(
    session: Any, listener: Listener, req: ListenerFields, ctx: RequestContext
) -> None:
    if req.insert_headers and listener.protocol != c.PROTOCOL_HTTP:
        raise bad_request("insert_headers is only valid for HTTP listeners", "insert_headers")
    if req.default_pool_id:
        pool = get_owned(session, Pool, req.default_pool_id, ctx, "Pool", "default_pool_id")
        if pool.load_balancer_id != listener.load_balancer_id:
            raise bad_request(
                f"default_pool_id {pool.id} belongs to another load balancer", "default_pool_id"
            )
        if pool.protocol not in c.VALID_LISTENER_POOL_PROTOCOLS[listener.protocol]:
            raise bad_request(
                f"default_pool_id: a {listener.protocol} listener cannot use a "
                f"{pool.protocol} pool",
                "default_pool_id",
            )
        others = [
            li
            for li in pool.listeners
            if li.id != listener.id and li.provisioning_status != c.DELETED
        ]
        if others:
            raise conflict(
                f"Pool {pool.id} is already the default pool of listener {others[0].id}",
                "default_pool_id",
            )


def new_listener(
    session: Any, lb: LoadBalancer, req: ListenerBody, ctx: RequestContext
) -> Listener:
    """A PENDING_CREATE listener of lb (not yet added to the session), or 4xx naming the field:
    its project, its port (free on the load balancer) and its default pool checked."""
    if req.project_id and req.project_id != lb.project_id:
        raise bad_request("project_id must be the load balancer's project", "project_id")
    taken = session.scalar(
        select(Listener.id).where(
            Listener.load_balancer_id == lb.id,
            Listener.protocol_port == req.protocol_port,
            Listener.provisioning_status != c.DELETED,
        )
    )
    if taken:
        raise conflict(
            f"Another Listener on this Load Balancer is already using "
            f"protocol_port {req.protocol_port}",
            "protocol_port",
        )
    listener = Listener(
        **claim_id(session, Listener, req.id, ctx),
        project_id=lb.project_id,
        load_balancer_id=lb.id,
        protocol=req.protocol,
        protocol_port=req.protocol_port,
        name=req.name,
        description=req.description,
        enabled=True if req.admin_state_up is None else req.admin_state_up,
        connection_limit=-1 if req.connection_limit is None else req.connection_limit,
        insert_headers=req.insert_headers,
        allowed_cidrs=req.allowed_cidrs,
        tags=req.tags or [],
        provisioning_status=c.PENDING_CREATE,
        operating_status=c.OFFLINE,
        **{
            k: getattr(req, k) if getattr(req, k) is not None else v
            for k, v in DEFAULT_TIMEOUTS.items()
        },
    )
    _check_fields(session, listener, req, ctx)
    listener.default_pool_id = req.default_pool_id
    return listener


@router.post("/v2/lbaas/listeners", status_code=201, tags=["listeners"])
def create_listener(
    body: CreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.listener

    def work(session: Any) -> dict[str, Any]:
        lb = get_owned(
            session, LoadBalancer, req.loadbalancer_id, ctx, "Load Balancer", "loadbalancer_id"
        )
        listener = new_listener(session, lb, req, ctx)
        mark(listener, lb.id, session, c.PENDING_CREATE)
        session.add(listener)
        session.flush()
        return {"listener": to_dict(listener)}

    return commit_or_conflict(
        app, work, f"protocol_port {req.protocol_port} is in use", "protocol_port"
    )


ReadRoutes(
    path="/v2/lbaas/listeners",
    id_param="listener_id",
    model=Listener,
    key="listener",
    kind="Listener",
    spec=LIST_SPEC,
    to_dict=to_dict,
    tag="listeners",
).add_to(router)


@router.put("/v2/lbaas/listeners/{listener_id}", tags=["listeners"])
def update_listener(
    listener_id: str,
    body: UpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.listener
    with app.db.session() as session:
        listener = get_owned(session, Listener, listener_id, ctx, "Listener")
        _check_fields(session, listener, req, ctx)
        mark(listener, listener.load_balancer_id, session, c.PENDING_UPDATE)
        apply_common_update(listener, req)
        for name in (
            "connection_limit",
            "default_pool_id",
            "insert_headers",
            "allowed_cidrs",
            *DEFAULT_TIMEOUTS,
        ):
            value = getattr(req, name)
            if value is not None:
                setattr(listener, name, value)
        session.flush()
        return {"listener": to_dict(listener)}


@router.delete("/v2/lbaas/listeners/{listener_id}", status_code=204, tags=["listeners"])
def delete_listener(
    listener_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_write()
    with app.db.session() as session:
        listener = get_owned(session, Listener, listener_id, ctx, "Listener")
        mark(listener, listener.load_balancer_id, session, c.PENDING_DELETE)
    return Response(status_code=204)
