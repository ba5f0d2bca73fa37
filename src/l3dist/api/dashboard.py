"""The live dashboard: ``GET /dashboard`` (the page) and ``GET /v2/l3dist/dashboard`` (what it
shows, as JSON, with the API's authentication and project scoping: a tenant sees its own load
balancers only, and routers without their names or peers' addresses).

Per load balancer: its VIP and floating IPs, its amphorae (lifecycle status, heartbeat
``health``: ``healthy``, ``silent`` past the heartbeat timeout, ``failing_over`` while the
health manager replaces it; registered behind the virtual-ip, draining; connections and
traffic from the listener statistics, flow rescue's totals from its last heartbeat), each
router's view of its next hops (the router view
over BMP). For admins, the routers and their BGP sessions. And the recent events (jobs: create,
failover, scale, drain...) of the caller's load balancers and their amphorae, with their
measured durations (queued to done). The page polls it every second.
"""

from __future__ import annotations

import datetime
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from l3dist.api.common import AppState, get_context, state, timestamp
from l3dist.api.context import RequestContext
from l3dist.common import constants as c
from l3dist.common.config import HealthConfig
from l3dist.db.models import (
    Amphora,
    AmphoraHealth,
    BmpPeer,
    BmpRouter,
    FloatingIp,
    ListenerStatistics,
    LoadBalancer,
    VirtualIp,
    VirtualIpInterface,
    WorkerJob,
    utcnow,
)
from l3dist.db.router_view import loadbalancer_routes

router = APIRouter()
EVENTS = 40
SILENT_AFTER = datetime.timedelta(seconds=HealthConfig().heartbeat_timeout)


@router.get("/dashboard", include_in_schema=False)
def dashboard_page() -> HTMLResponse:
    page = resources.files("l3dist.api").joinpath("static/dashboard.html").read_text()
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/v2/l3dist/dashboard", tags=["dashboard"])
def dashboard(
    app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    ctx.require_read()
    with app.db.session(writer=False) as session:
        query = select(LoadBalancer).where(LoadBalancer.provisioning_status != c.DELETED)
        if not ctx.is_admin:
            query = query.where(LoadBalancer.project_id == ctx.project_id)
        lbs = list(session.scalars(query.order_by(LoadBalancer.created_at)))
        now = utcnow()
        shown = [_loadbalancer(session, lb, ctx.is_admin, now) for lb in lbs]
        ids = [lb.id for lb in lbs] + [a["id"] for lb in shown for a in lb["amphorae"]]
        return {
            "generated_at": timestamp(now),
            "project_id": ctx.project_id,
            "admin": ctx.is_admin,
            "loadbalancers": shown,
            "routers": _routers(session) if ctx.is_admin else [],
            "events": _events(session, ids),
        }


def _loadbalancer(session: Any, lb: LoadBalancer, admin: bool, now: datetime.datetime) -> Any:
    virtual_ip = session.scalar(select(VirtualIp).where(VirtualIp.load_balancer_id == lb.id))
    registered = set()
    floating: list[str] = []
    if virtual_ip is not None:
        registered = set(
            session.scalars(
                select(VirtualIpInterface.amphora_id).where(
                    VirtualIpInterface.virtual_ip_id == virtual_ip.id
                )
            )
        )
        floating = list(
            session.scalars(
                select(FloatingIp.floating_ip_address)
                .where(FloatingIp.virtual_ip_id == virtual_ip.id)
                .order_by(FloatingIp.floating_ip_address)
            )
        )
    amphorae = list(
        session.scalars(
            select(Amphora)
            .where(Amphora.load_balancer_id == lb.id, Amphora.status != c.DELETED)
            .order_by(Amphora.created_at)
        )
    )
    health = {
        h.amphora_id: h
        for h in session.scalars(
            select(AmphoraHealth).where(AmphoraHealth.amphora_id.in_([a.id for a in amphorae]))
        )
    }
    traffic = {
        amphora_id: (int(active or 0), int(bytes_in or 0), int(bytes_out or 0))
        for amphora_id, active, bytes_in, bytes_out in session.execute(
            select(
                ListenerStatistics.amphora_id,
                func.sum(ListenerStatistics.active_connections),
                func.sum(ListenerStatistics.bytes_in),
                func.sum(ListenerStatistics.bytes_out),
            )
            .where(ListenerStatistics.amphora_id.in_([a.id for a in amphorae]))
            .group_by(ListenerStatistics.amphora_id)
        )
    }
    rows = []
    for amphora in amphorae:
        beat = health.get(amphora.id)
        if beat is not None and beat.busy:
            state_ = "failing_over"
        elif beat is None or now - beat.last_update > SILENT_AFTER:
            state_ = "silent"
        else:
            state_ = "healthy"
        active, bytes_in, bytes_out = traffic.get(amphora.id, (0, 0, 0))
        rows.append(
            {
                "id": amphora.id,
                "status": amphora.status,
                "health": state_,
                "frontend_ip": amphora.frontend_ip,
                "registered": amphora.id in registered,
                "draining": amphora.drain_started_at is not None,
                "active_connections": active,
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
                # Flow rescue's totals (its last heartbeat): flows moved here by the fabric,
                # their packets rescued, copies sent to peers...; empty while rescue is off.
                "flow_rescue": dict(beat.flow_rescue or {}) if beat is not None else {},
            }
        )
    return {
        "id": lb.id,
        "name": lb.name or "",
        "project_id": lb.project_id,
        "vip_address": lb.vip.ip_address if lb.vip else None,
        "floating_ips": floating,
        "provisioning_status": lb.provisioning_status,
        "operating_status": lb.operating_status,
        "amphora_count": lb.amphora_count,
        "amphorae": rows,
        "routes": loadbalancer_routes(session, lb, admin)["addresses"],
    }


def _routers(session: Any) -> list[dict[str, Any]]:
    peers = list(session.scalars(select(BmpPeer).order_by(BmpPeer.peer_address)))
    return [
        {
            "router": r.name or r.address,
            "address": r.address,
            "description": r.description,
            "connected": r.connected,
            "sessions": [
                {"peer": p.peer_address, "up": p.up, "since": timestamp(p.since)}
                for p in peers
                if p.router_address == r.address
            ],
        }
        for r in session.scalars(select(BmpRouter).order_by(BmpRouter.address))
    ]


def _events(session: Any, target_ids: list[str]) -> list[dict[str, Any]]:
    """The latest jobs on these objects (a load balancer's flows, failovers included, have
    the load balancer as their target)."""
    if not target_ids:
        return []
    jobs = session.scalars(
        select(WorkerJob)
        .where(WorkerJob.target_id.in_(target_ids))
        .order_by(WorkerJob.created_at.desc())
        .limit(EVENTS)
    )
    events = []
    for job in jobs:
        done = job.state in (c.JOB_DONE, c.JOB_FAILED)
        ended = job.updated_at if done else None
        events.append(
            {
                "id": job.id,
                "flow": job.flow,
                "target_id": job.target_id,
                "state": job.state,
                "queued_at": timestamp(job.created_at),
                "ended_at": timestamp(ended),
                "duration_ms": round((ended - job.created_at).total_seconds() * 1000)
                if ended else None,
                "error": (job.error or "")[:300] or None,
            }
        )  # fmt: skip
    return events
