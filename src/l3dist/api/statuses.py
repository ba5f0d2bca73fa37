"""``GET /v2/lbaas/statuses``: every load balancer's statuses in one answer, flat.

A status sync (the Octavia provider agent, a dashboard) that wants every object's
provisioning and operating status would otherwise ask each load balancer's ``/status`` tree,
one request each, at every tick. This answer holds them all, in the shape octavia-lib's
``DriverLibrary.update_loadbalancer_status`` takes: per load balancer, flat lists of
listeners, pools (every pool of the load balancer, not only listeners' default pools),
members and health monitors, each ``{id, provisioning_status, operating_status, updated_at}``,
and ``listener_statistics`` in the shape ``update_listener_statistics`` takes (``{id,
active_connections, bytes_in, bytes_out, request_errors, total_connections}`` per listener).

Scoped as lists are: an admin sees every project's load balancers, anyone else their own.
``provider`` filters by the load balancer's provider (Octavia's agent asks for ``l3dist``).
Objects being deleted are included until their row is gone (``PENDING_DELETE``); a row that
is gone is simply absent, and a reader that saw it before knows it as deleted. A reader that
did not (the provider agent after a restart) asks ``include_deleted=true`` and gets the ids
of the DELETED load balancers too (``deleted``: l3dist keeps their rows).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from l3dist.api.common import AppState, get_context, state
from l3dist.api.context import RequestContext
from l3dist.common import constants as c
from l3dist.db import jobs
from l3dist.db.models import LoadBalancer, Pool
from l3dist.db.queries import listener_statistics

router = APIRouter()


def _entry(obj: Any) -> dict[str, Any]:
    # updated_at at full precision: a change whose statuses end as they were (a member's
    # weight: PENDING_UPDATE, then ACTIVE again) still shows as a change to a reader that
    # only looks between the two.
    changed = obj.updated_at or obj.created_at
    return {
        "id": obj.id,
        "provisioning_status": obj.provisioning_status,
        "operating_status": obj.operating_status,
        "updated_at": changed.isoformat() if changed else None,
    }


def _live(objects: list[Any]) -> list[Any]:
    return [obj for obj in objects if obj.provisioning_status != c.DELETED]


def flat_statuses(lb: LoadBalancer, status_reason: str | None) -> dict[str, Any]:
    """One load balancer's objects as DriverLibrary's lists (the load balancer first)."""
    pools = _live(lb.pools)
    members = [member for pool in pools for member in _live(pool.members)]
    monitors = [
        pool.health_monitor
        for pool in pools
        if pool.health_monitor is not None and pool.health_monitor.provisioning_status != c.DELETED
    ]
    return {
        "loadbalancer": {**_entry(lb), "status_reason": status_reason},
        "listeners": [_entry(listener) for listener in _live(lb.listeners)],
        "pools": [_entry(pool) for pool in pools],
        "members": [_entry(member) for member in members],
        "healthmonitors": [_entry(monitor) for monitor in monitors],
    }


@router.get("/v2/lbaas/statuses", tags=["loadbalancers"])
def list_statuses(
    provider: str | None = Query(None, max_length=64),
    include_deleted: bool = Query(False),
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_read()
    query = (
        select(LoadBalancer)
        .where(LoadBalancer.provisioning_status != c.DELETED)
        .options(
            selectinload(LoadBalancer.listeners),
            selectinload(LoadBalancer.pools).selectinload(Pool.members),
            selectinload(LoadBalancer.pools).selectinload(Pool.health_monitor),
        )
        .order_by(LoadBalancer.created_at, LoadBalancer.id)
    )
    if provider is not None:
        query = query.where(LoadBalancer.provider == provider)
    if not ctx.is_admin:
        query = query.where(LoadBalancer.project_id == ctx.project_id)
    with app.db.session(writer=False) as session:
        statuses = []
        for lb in session.scalars(query):
            reason = (
                jobs.last_failure(session, lb.id) if lb.provisioning_status == c.ERROR else None
            )
            statuses.append(flat_statuses(lb, reason))
        ids = [entry["id"] for lb_statuses in statuses for entry in lb_statuses["listeners"]]
        stats = listener_statistics(session, ids)
        deleted = list(session.scalars(_deleted(provider, ctx))) if include_deleted else None
    for lb_statuses in statuses:
        lb_statuses["listener_statistics"] = [
            {"id": entry["id"], **stats[entry["id"]]} for entry in lb_statuses["listeners"]
        ]
    return {"statuses": statuses} if deleted is None else {"statuses": statuses, "deleted": deleted}


def _deleted(provider: str | None, ctx: RequestContext) -> Any:
    """The ids of the DELETED load balancers (their rows stay), scoped and filtered alike."""
    query = select(LoadBalancer.id).where(LoadBalancer.provisioning_status == c.DELETED)
    if provider is not None:
        query = query.where(LoadBalancer.provider == provider)
    if not ctx.is_admin:
        query = query.where(LoadBalancer.project_id == ctx.project_id)
    return query.order_by(LoadBalancer.id)
