"""VIP reservations: ``POST /v2/ports`` and ``DELETE /v2/ports/{id}`` for a load balancer's VIP
port before the load balancer exists.

Octavia asks its provider for the VIP port before it sends the load balancer
(``create_vip_port``), with the load balancer's id already chosen. l3dist's provider answers
it with this call, shaped as Octavia's own network driver asks Neutron: ``device_owner``
``Octavia``, ``device_id`` ``lb-<load balancer id>``, one fixed IP on an anycast subnet (an
address, or the lowest free one). So the VIP comes from l3dist's anycast pool, not from
Octavia's network driver. The load balancer create that follows names the port
(``vip_port_id``) and adopts it: the VIP is the reservation's address, and deleting the load
balancer releases it.

Invariants: only VIP ports are made here (the network driver makes every other port); the
caller must be an admin or a service, because the device id chooses the load balancer's id
(as ``claim_id`` allows only them); one VIP port per load balancer id, none for an id in use;
a refusal changes nothing. A reservation whose load balancer is never created (Octavia's
request failed after it) stays until ``DELETE /v2/ports/{id}``; a VIP port of a load balancer
cannot be deleted (delete the load balancer).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field, StrictBool
from sqlalchemy import select, update

from l3dist.api.common import (
    SERVICE_ROLES,
    AppState,
    Body,
    check_project,
    get_context,
    state,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import ApiError, bad_request, conflict
from l3dist.api.fields import Id, IPAddress, Name
from l3dist.api.loadbalancers import address_taken, check_role
from l3dist.api.ports import VIP_DEVICE_PREFIX, port_admin, port_dict, visible_port
from l3dist.db.models import LoadBalancer, NetPort
from l3dist.network.exceptions import NetworkException, SubnetNotFound
from l3dist.network.models import ROLE_ANYCAST
from l3dist.network.static import OWNER_VIP

router = APIRouter()


class FixedIp(Body):
    subnet_id: Id
    ip_address: IPAddress | None = None


class PortCreate(Body):
    network_id: Id
    fixed_ips: list[FixedIp] = Field(min_length=1, max_length=1)
    device_id: Name
    device_owner: Name
    name: Name | None = None
    description: Name | None = None
    project_id: Id | None = None
    tenant_id: Id | None = None
    admin_state_up: StrictBool = True


class PortRequest(Body):
    port: PortCreate


def _load_balancer_id(device_id: str | None) -> str:
    """The load balancer id a VIP port's device id names (``lb-<uuid>``), or 400."""
    device = device_id or ""
    try:
        if not device.startswith(VIP_DEVICE_PREFIX):
            raise ValueError(device)
        return str(uuid.UUID(device[len(VIP_DEVICE_PREFIX) :]))
    except ValueError:
        raise bad_request(
            f"device_id {device!r}: a VIP port's device_id is lb-<load balancer id (a UUID)>",
            "device_id",
        ) from None


@router.post("/v2/ports", status_code=201, tags=["network"])
def create_vip_port(
    body: PortRequest, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    ctx.require_write()
    req = body.port
    if not (ctx.is_admin or ctx.roles & SERVICE_ROLES):
        message = "device_id: only an admin or a service reserves VIP ports."
        raise ApiError(403, message, "device_id")
    if req.device_owner != OWNER_VIP:
        raise bad_request(
            f"device_owner {req.device_owner!r}: only VIP ports (device_owner {OWNER_VIP}) are "
            "made here; the network driver makes every other port",
            "device_owner",
        )
    lb_id = _load_balancer_id(req.device_id)
    project_id = check_project(ctx, req.project_id or req.tenant_id)
    [fixed] = req.fixed_ips
    try:
        subnet = app.network.get_subnet(fixed.subnet_id)
    except SubnetNotFound:
        raise bad_request(f"fixed_ips: subnet {fixed.subnet_id} not found", "fixed_ips") from None
    if subnet.network_id != req.network_id:
        raise bad_request(
            f"fixed_ips: subnet {subnet.id} is not on network_id {req.network_id}", "network_id"
        )
    check_role(subnet, ROLE_ANYCAST, "fixed_ips", "a VIP")
    address = str(fixed.ip_address) if fixed.ip_address is not None else None
    if address is not None and not subnet.contains(address):
        raise bad_request(f"fixed_ips: {address} is not in {subnet.cidr}", "fixed_ips")
    device = f"{VIP_DEVICE_PREFIX}{lb_id}"
    with app.db.session(writer=False) as session:
        if session.get(LoadBalancer, lb_id) is not None:
            raise conflict(f"device_id {device}: load balancer {lb_id} exists", "device_id")
        held = select(NetPort.id).where(
            NetPort.device_id == device, NetPort.device_owner == OWNER_VIP
        )
        if session.scalar(held) is not None:
            raise conflict(f"device_id {device} already has a VIP port", "device_id")
        if address is not None and (holder := address_taken(session, address)):
            raise conflict(f"fixed_ips: {address} is in use by {holder}", "fixed_ips")
    admin = port_admin(app)
    try:
        port = admin.create_port(subnet.network_id, None, None, device, OWNER_VIP,
                                 [(subnet.id, address)])  # fmt: skip
    except NetworkException as exc:
        raise conflict(f"fixed_ips: {exc}", "fixed_ips") from None
    with app.db.session() as session:
        session.execute(update(NetPort).where(NetPort.id == port.id).values(
            project_id=project_id, name=req.name, admin_state_up=req.admin_state_up))  # fmt: skip
        row = session.get(NetPort, port.id)
        assert row is not None
        session.refresh(row)
        return {"port": port_dict(row)}


@router.delete("/v2/ports/{port_id}", status_code=204, tags=["network"])
def delete_vip_port(
    port_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_write()
    with app.db.session(writer=False) as session:
        port, lb = visible_port(session, port_id, ctx)
        if lb is not None:
            raise conflict(
                f"Port {port_id} is the VIP port of load balancer {lb.id}: delete that", "port_id"
            )
        if port.device_owner != OWNER_VIP:
            raise conflict(f"Port {port_id} is the network driver's, not a VIP port", "port_id")
    port_admin(app).delete_port(port_id)
    return Response(status_code=204)
