"""A Neutron-shaped view of the network driver's networks and subnets, and (admin only) their
definition, for drivers that manage networks themselves (``static``).

OpenStack clients resolve ``--vip-subnet-id <name>`` through the network service; with an
endpoint override they ask this API, so it answers ``/v2.0/networks`` and ``/v2.0/subnets``.
The operator defines networks with ``POST /v2.0/networks`` and ``POST /v2.0/subnets`` as in
Neutron; each subnet carries its ``role`` (an l3dist extension: anycast, frontend, management,
member, external), which decides what a load balancer may take from it.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field, StrictBool, StrictInt

from l3dist.api.common import AppState, Body, get_context, state
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request, conflict, not_found
from l3dist.network.exceptions import NetworkNotFound, SubnetNotFound
from l3dist.network.models import ROLE_MEMBER, Network, Subnet
from l3dist.network.static import DuplicateName, NetworkInUse

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
        "role": subnet.role,
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
    for key in ("id", "name", "network_id", "ip_version", "cidr", "role"):
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


# -- definition (admin only; drivers that manage networks) ------------------------------------


@runtime_checkable
class NetworkAdmin(Protocol):
    """What a driver that manages its own networks offers (the static driver)."""

    def create_network(
        self, name: str, mtu: int = 1500, network_id: str | None = None,
        router_external: bool = False, project_id: str | None = None,
    ) -> Network: ...  # fmt: skip

    def create_subnet(
        self, network_id: str, cidr: str, name: str, role: str = ROLE_MEMBER,
        gateway_ip: str | None = None, first_host_index: int = 100,
        subnet_id: str | None = None,
    ) -> Subnet: ...  # fmt: skip

    def delete_network(self, network_id: str) -> None: ...

    def delete_subnet(self, subnet_id: str) -> None: ...


def _admin(app: AppState, ctx: RequestContext) -> NetworkAdmin:
    ctx.require_admin()
    if not isinstance(app.network, NetworkAdmin):
        raise bad_request(
            "the configured network driver does not manage networks (use the static driver)"
        )
    return app.network


Name = Annotated[str, Field(min_length=1, max_length=255)]


class NetworkCreate(Body):
    # Neutron's id of the same network (an Octavia deployment: l3dist_octavia passes them on).
    id: uuid.UUID | None = None
    name: Name
    mtu: Annotated[StrictInt, Field(ge=576, le=9216)] = 1500
    router_external: StrictBool = Field(default=False, alias="router:external")
    admin_state_up: Literal[True] = True
    shared: StrictBool = True
    project_id: Annotated[str, Field(min_length=1, max_length=36)] | None = None


class NetworkCreateRequest(Body):
    network: NetworkCreate


class SubnetCreate(Body):
    id: uuid.UUID | None = None  # Neutron's id of the same subnet, as for networks
    name: Name
    network_id: Annotated[str, Field(min_length=1, max_length=36)]
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
    ip_version: Literal[4, 6] | None = None
    # Neutron: absent -> the subnet's first address; null -> no gateway.
    gateway_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    role: Literal["anycast", "frontend", "management", "member", "external"] = "member"
    # Addresses l3dist hands out start at this host index (below: gateways, routers).
    allocation_start_index: Annotated[StrictInt, Field(ge=1, le=65535)] = 100
    enable_dhcp: Literal[False] = False


class SubnetCreateRequest(Body):
    subnet: SubnetCreate


@router.post("/v2/networks", status_code=201, tags=["network"])
def create_network(
    body: NetworkCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    driver = _admin(app, ctx)
    req = body.network
    network_id = str(req.id) if req.id else None
    if network_id and network_id in app.network.networks:
        raise conflict(f"id {network_id} is already taken", "id")
    try:
        network = driver.create_network(
            req.name,
            req.mtu,
            network_id=network_id,
            router_external=req.router_external,
            project_id=req.project_id,
        )
    except DuplicateName as exc:
        raise conflict(str(exc), "name") from None
    return {"network": network_dict(network)}


@router.delete("/v2/networks/{network_id}", status_code=204, tags=["network"])
def delete_network(
    network_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    driver = _admin(app, ctx)
    try:
        driver.delete_network(network_id)
    except NetworkNotFound:
        raise not_found("Network", network_id) from None
    except NetworkInUse as exc:
        raise conflict(str(exc)) from None
    return Response(status_code=204)


def _subnet_exists(app: AppState, subnet_id: str) -> bool:
    try:
        app.network.get_subnet(subnet_id)
    except SubnetNotFound:
        return False
    return True


@router.post("/v2/subnets", status_code=201, tags=["network"])
def create_subnet(
    body: SubnetCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    driver = _admin(app, ctx)
    req = body.subnet
    if req.ip_version is not None and req.ip_version != req.cidr.version:
        raise bad_request(
            f"ip_version {req.ip_version} does not match cidr {req.cidr}", "ip_version"
        )
    if req.cidr.num_addresses < 4:
        raise bad_request(f"cidr {req.cidr} is too small for a subnet", "cidr")
    if "gateway_ip" in req.model_fields_set:
        gateway = req.gateway_ip
        if gateway is not None and (gateway.version != req.cidr.version or gateway not in req.cidr):
            raise bad_request(f"gateway_ip {gateway} is not in cidr {req.cidr}", "gateway_ip")
    else:
        gateway = req.cidr[1]
    subnet_id = str(req.id) if req.id else None
    if subnet_id and _subnet_exists(app, subnet_id):
        raise conflict(f"id {subnet_id} is already taken", "id")
    try:
        subnet = driver.create_subnet(
            req.network_id,
            str(req.cidr),
            req.name,
            req.role,
            str(gateway) if gateway is not None else None,
            req.allocation_start_index,
            subnet_id=subnet_id,
        )
    except NetworkNotFound:
        raise not_found("Network", req.network_id, "network_id") from None
    except DuplicateName as exc:
        raise conflict(str(exc), "name") from None
    except NetworkInUse as exc:
        raise conflict(str(exc), "cidr") from None
    return {"subnet": subnet_dict(subnet)}


@router.delete("/v2/subnets/{subnet_id}", status_code=204, tags=["network"])
def delete_subnet(
    subnet_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    driver = _admin(app, ctx)
    try:
        driver.delete_subnet(subnet_id)
    except SubnetNotFound:
        raise not_found("Subnet", subnet_id) from None
    except NetworkInUse as exc:
        raise conflict(str(exc)) from None
    return Response(status_code=204)
