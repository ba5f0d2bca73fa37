"""``/v2/lbaas/healthmonitors``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import Field, StrictBool, StrictInt, field_validator

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
from l3dist.api.fields import Id, Name, Tag
from l3dist.api.query import ListSpec, parse_bool
from l3dist.common import constants as c
from l3dist.db.models import HealthMonitor, Pool

router = APIRouter()

Seconds = Annotated[StrictInt, Field(ge=0, le=2147483647)]
Retries = Annotated[StrictInt, Field(ge=1, le=10)]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "PATCH", "CONNECT"]
UrlPath = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^/[^\s]*$")]
ExpectedCodes = Annotated[str, Field(max_length=64, pattern=r"^\d{3}((-\d{3})|(,\d{3})*)$")]
HTTP_TYPES = ("HTTP", "HTTPS")


class MonitorFields(Body):
    name: Name | None = None
    admin_state_up: StrictBool | None = None
    delay: Seconds | None = None
    timeout: Seconds | None = None
    max_retries: Retries | None = None
    max_retries_down: Retries | None = None
    http_method: HttpMethod | None = None
    url_path: UrlPath | None = None
    expected_codes: ExpectedCodes | None = None
    domain_name: Annotated[str, Field(max_length=255, pattern=r"^[A-Za-z0-9.-]+$")] | None = None
    http_version: float | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)

    @field_validator("http_version")
    @classmethod
    def _http_version(cls, value: float | None) -> float | None:
        if value is not None and value not in (1.0, 1.1):
            raise ValueError("http_version must be 1.0 or 1.1")
        return value


class MonitorBody(MonitorFields):
    """A new health monitor's fields, without its pool (a fully populated load balancer
    create nests these)."""

    # Chosen by an admin or a service (Octavia's provider driver: the same id in both).
    id: uuid.UUID | None = None
    type: Literal["HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO"]
    delay: Seconds
    timeout: Seconds
    max_retries: Retries
    project_id: Id | None = None


class MonitorCreate(MonitorBody):
    pool_id: Id


class CreateRequest(Body):
    healthmonitor: MonitorCreate


class UpdateRequest(Body):
    healthmonitor: MonitorFields


LIST_SPEC = ListSpec(
    plural="healthmonitors",
    id_column=HealthMonitor.id,
    columns={
        "id": HealthMonitor.id,
        "name": HealthMonitor.name,
        "project_id": HealthMonitor.project_id,
        "type": HealthMonitor.type,
        "pool_id": HealthMonitor.pool_id,
        "delay": HealthMonitor.delay,
        "timeout": HealthMonitor.timeout,
        "max_retries": HealthMonitor.rise_threshold,
        "max_retries_down": HealthMonitor.fall_threshold,
        "admin_state_up": HealthMonitor.enabled,
        "provisioning_status": HealthMonitor.provisioning_status,
        "operating_status": HealthMonitor.operating_status,
        "created_at": HealthMonitor.created_at,
        "updated_at": HealthMonitor.updated_at,
    },
    converters={
        "admin_state_up": parse_bool,
        "delay": int,
        "timeout": int,
        "max_retries": int,
        "max_retries_down": int,
    },
)


def to_dict(hm: HealthMonitor) -> dict[str, Any]:
    data = base_fields(hm)
    data.pop("description")
    return {
        **data,
        "type": hm.type,
        "pools": [{"id": hm.pool_id}],
        "delay": hm.delay,
        "timeout": hm.timeout,
        "max_retries": hm.rise_threshold,
        "max_retries_down": hm.fall_threshold,
        "http_method": hm.http_method,
        "url_path": hm.url_path,
        "expected_codes": hm.expected_codes,
        "domain_name": hm.domain_name,
        "http_version": hm.http_version,
    }


def _check(monitor_type: str, req: MonitorFields, delay: int, timeout: int) -> None:
    if monitor_type not in HTTP_TYPES:
        for name in ("http_method", "url_path", "expected_codes", "domain_name", "http_version"):
            if getattr(req, name) is not None:
                raise bad_request(f"{name} is only valid for HTTP and HTTPS monitors", name)
    if timeout > delay:
        raise bad_request(
            f"timeout ({timeout}) must not be greater than delay ({delay})", "timeout"
        )


def new_monitor(session: Any, pool: Pool, req: MonitorBody, ctx: RequestContext) -> HealthMonitor:
    """A PENDING_CREATE health monitor of pool (not yet added to the session), or 4xx naming
    the field."""
    _check(req.type, req, req.delay, req.timeout)
    if req.project_id and req.project_id != pool.project_id:
        raise bad_request("project_id must be the pool's project", "project_id")
    http = req.type in HTTP_TYPES
    return HealthMonitor(
        **claim_id(session, HealthMonitor, req.id, ctx),
        project_id=pool.project_id,
        pool_id=pool.id,
        type=req.type,
        delay=req.delay,
        timeout=req.timeout,
        rise_threshold=req.max_retries,
        fall_threshold=req.max_retries_down or 3,
        http_method=(req.http_method or "GET") if http else None,
        url_path=(req.url_path or "/") if http else None,
        expected_codes=(req.expected_codes or "200") if http else None,
        domain_name=req.domain_name,
        http_version=req.http_version,
        name=req.name,
        enabled=True if req.admin_state_up is None else req.admin_state_up,
        tags=req.tags or [],
        provisioning_status=c.PENDING_CREATE,
        operating_status=c.OFFLINE,
    )


@router.post("/v2/lbaas/healthmonitors", status_code=201, tags=["healthmonitors"])
def create_health_monitor(
    body: CreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.healthmonitor

    def work(session: Any) -> dict[str, Any]:
        pool = get_owned(session, Pool, req.pool_id, ctx, "Pool", "pool_id")
        existing = pool.health_monitor
        if existing is not None and existing.provisioning_status != c.DELETED:
            raise conflict(f"Pool {pool.id} already has health monitor {existing.id}", "pool_id")
        hm = new_monitor(session, pool, req, ctx)
        mark(hm, pool.load_balancer_id, session, c.PENDING_CREATE)
        session.add(hm)
        session.flush()
        return {"healthmonitor": to_dict(hm)}

    return commit_or_conflict(
        app, work, f"Pool {req.pool_id} already has a health monitor", "pool_id"
    )


ReadRoutes(
    path="/v2/lbaas/healthmonitors",
    id_param="hm_id",
    model=HealthMonitor,
    key="healthmonitor",
    kind="Health Monitor",
    spec=LIST_SPEC,
    to_dict=to_dict,
    tag="healthmonitors",
).add_to(router)


@router.put("/v2/lbaas/healthmonitors/{hm_id}", tags=["healthmonitors"])
def update_health_monitor(
    hm_id: str,
    body: UpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.healthmonitor
    with app.db.session() as session:
        hm = get_owned(session, HealthMonitor, hm_id, ctx, "Health Monitor")
        delay = hm.delay if req.delay is None else req.delay
        timeout = hm.timeout if req.timeout is None else req.timeout
        _check(hm.type, req, delay, timeout)
        mark(hm, hm.pool.load_balancer_id, session, c.PENDING_UPDATE)
        apply_common_update(hm, req)
        hm.delay, hm.timeout = delay, timeout
        if req.max_retries is not None:
            hm.rise_threshold = req.max_retries
        if req.max_retries_down is not None:
            hm.fall_threshold = req.max_retries_down
        for name in ("http_method", "url_path", "expected_codes", "domain_name", "http_version"):
            value = getattr(req, name)
            if value is not None:
                setattr(hm, name, value)
        session.flush()
        return {"healthmonitor": to_dict(hm)}


@router.delete("/v2/lbaas/healthmonitors/{hm_id}", status_code=204, tags=["healthmonitors"])
def delete_health_monitor(
    hm_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_write()
    with app.db.session() as session:
        hm = get_owned(session, HealthMonitor, hm_id, ctx, "Health Monitor")
        mark(hm, hm.pool.load_balancer_id, session, c.PENDING_DELETE)
    return Response(status_code=204)
