"""``GET /v2/lbaas/loadbalancers/{id}/routes``: what the operator's routers hold of the load
balancer's addresses (from BMP, ``l3dist routerview``) against the next hops l3dist intends,
per router: installed, pending, rejected at the router, session down, not received, or an
unexpected path. Scoped as shows are; router names and peer addresses for admins only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from l3dist.api.common import AppState, get_context, get_owned, state
from l3dist.api.context import RequestContext
from l3dist.db.models import LoadBalancer
from l3dist.db.router_view import loadbalancer_routes

router = APIRouter()


@router.get("/v2/lbaas/loadbalancers/{loadbalancer_id}/routes", tags=["loadbalancers"])
def loadbalancer_routes_view(
    loadbalancer_id: str,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_read()
    with app.db.session(writer=False) as session:
        lb = get_owned(session, LoadBalancer, loadbalancer_id, ctx, "Load Balancer")
        return {"routes": loadbalancer_routes(session, lb, admin=ctx.is_admin)}
