"""A read-only, Neutron-shaped view of the network driver's networks and subnets.

OpenStack clients resolve ``--vip-subnet-id <name>`` through the network service; with an
endpoint override they ask this API, so it answers ``/v2.0/networks`` and ``/v2.0/subnets``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from l3dist.api.common import AppState, get_context, state
from l3dist.api.context import RequestContext
from l3dist.api.errors import not_found
from l3dist.network.models import Network, Subnet

router = APIRouter()


def subnet_dict(subnet: Subnet) -> dict[str, Any]:
    return {
        "id": subnet.id,
        "name": subnet.name,
        "network_id": subnet.network_id,
        "cidr": subnet.cidr,
        "ip_version": subnet.ip_version,
        "gateway_ip": subnet.gateway_ip,
        "tenant_id": subnet.tenant_id,
        "project_id": subnet.tenant_id,
        "enable_dhcp": False,
    }


def network_dict(network: Network) -> dict[str, Any]:
    return {
        "id": network.id,
        "name": network.name,
        "subnets": list(network.subnets),
        "admin_state_up": network.admin_state_up,
        "status": "ACTIVE",
        "shared": True,
        "router:external": network.router_external,
        "mtu": network.mtu,
        "tenant_id": network.tenant_id,
        "project_id": network.tenant_id,
    }


def _matches(item: dict[str, Any], request: Request) -> bool:
    for key in ("id", "name", "network_id", "ip_version", "cidr"):
        wanted = request.query_params.getlist(key)
        if wanted and str(item.get(key)) not in wanted:
            return False
    return True


def _all_subnets(app: AppState) -> list[Subnet]:
    subnets = []
    for network in _all_networks(app):
        subnets += [app.network.get_subnet(s) for s in network.subnets]
    return subnets


def _all_networks(app: AppState) -> list[Network]:
    return list(app.network.networks.values())


@router.get("/v2/subnets", tags=["network"])
def list_subnets(
    request: Request, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    ctx.require_read()
    items = [subnet_dict(s) for s in _all_subnets(app)]
    return {"subnets": [i for i in items if _matches(i, request)]}


@router.get("/v2/subnets/{subnet_id}", tags=["network"])
def show_subnet(
    subnet_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    ctx.require_read()
    for subnet in _all_subnets(app):
        if subnet.id == subnet_id:
            return {"subnet": subnet_dict(subnet)}
    raise not_found("Subnet", subnet_id)


@router.get("/v2/networks", tags=["network"])
def list_networks(
    request: Request, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    ctx.require_read()
    items = [network_dict(n) for n in _all_networks(app)]
    return {"networks": [i for i in items if _matches(i, request)]}


@router.get("/v2/networks/{network_id}", tags=["network"])
def show_network(
    network_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    ctx.require_read()
    for network in _all_networks(app):
        if network.id == network_id:
            return {"network": network_dict(network)}
    raise not_found("Network", network_id)
