"""Octavia's statistics calls: ``GET /v2/lbaas/listeners/{id}/stats`` and
``GET /v2/lbaas/loadbalancers/{id}/stats``.

``{"stats": {active_connections, bytes_in, bytes_out, request_errors, total_connections}}``:
a listener's totals over every amphora that served it (kept across HAProxy reloads by the
health manager, from the heartbeats), its active connections over its live amphorae; a load
balancer's, the sums over its listeners. Scoped as shows are (another project's object is 404).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from l3dist.api.common import AppState, get_context, get_owned, state
from l3dist.api.context import RequestContext
from l3dist.common import constants as c
from l3dist.db.models import Listener, LoadBalancer
from l3dist.db.queries import STATISTICS, listener_statistics

router = APIRouter()


@router.get("/v2/lbaas/listeners/{listener_id}/stats", tags=["listeners"])
def listener_stats(
    listener_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    ctx.require_read()
    with app.db.session(writer=False) as session:
        get_owned(session, Listener, listener_id, ctx, "Listener")
        return {"stats": listener_statistics(session, [listener_id])[listener_id]}


@router.get("/v2/lbaas/loadbalancers/{loadbalancer_id}/stats", tags=["loadbalancers"])
def loadbalancer_stats(
    loadbalancer_id: str,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_read()
    with app.db.session(writer=False) as session:
        get_owned(session, LoadBalancer, loadbalancer_id, ctx, "Load Balancer")
        ids = list(
            session.scalars(
                select(Listener.id).where(
                    Listener.load_balancer_id == loadbalancer_id,
                    Listener.provisioning_status != c.DELETED,
                )
            )
        )
        per_listener = listener_statistics(session, ids).values()
        return {"stats": {name: sum(s[name] for s in per_listener) for name in STATISTICS}}
