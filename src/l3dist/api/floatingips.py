"""``/v2/floatingips``: Neutron's floating IP API, for load balancer VIPs.

A floating IP is an address of an external network's ``external`` subnet (IPv4 only), reserved
in the network driver's IPAM as a port of its own (``device_owner`` network:floatingip), so no
VIP, front end or other floating IP is ever handed it. It is bound to a load balancer's VIP
port (``port_id``, ``fixed_ip_address`` = the VIP): that binds it to the load balancer's
``virtual_ip`` row, never to an amphora, so a failover or a scale changes no floating IP row.

The API only records the binding and queues ``update_floating_ips`` on the load balancer (so
it runs between that load balancer's other jobs) in the same transaction: the worker makes the
amphorae announce (or withdraw) the address and sets the status (ACTIVE bound, DOWN unbound).
Every refusal is a 4xx naming the field and leaves nothing behind (no row, no port, no job).
"""

from __future__ import annotations

import contextlib
import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from l3dist.api.common import (
    AppState,
    Body,
    PlainJSONResponse,
    check_project,
    get_context,
    get_owned,
    list_response,
    state,
    timestamp,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request, conflict, not_found
from l3dist.api.fields import Id, IPAddress, Name
from l3dist.api.ports import port_admin, visible_port
from l3dist.api.query import ListSpec, select_fields
from l3dist.common import constants as c
from l3dist.db import jobs
from l3dist.db.models import FloatingIp, LoadBalancer, VirtualIp
from l3dist.network import ipam
from l3dist.network.exceptions import NetworkException, NetworkNotFound, SubnetNotFound
from l3dist.network.models import ROLE_ANYCAST, ROLE_EXTERNAL, Subnet
from l3dist.network.roles import subnet_holding
from l3dist.network.static import OWNER_VIP

router = APIRouter()
PATH = "/v2/floatingips"
OWNER_FLOATINGIP = "network:floatingip"


class FloatingIpCreate(Body):
    floating_network_id: Id
    port_id: Id | None = None
    fixed_ip_address: IPAddress | None = None
    floating_ip_address: IPAddress | None = None
    subnet_id: Id | None = None
    description: Name | None = None
    project_id: Id | None = None
    tenant_id: Id | None = None


class FloatingIpCreateRequest(Body):
    floatingip: FloatingIpCreate


class FloatingIpUpdate(Body):
    port_id: Id | None = None
    fixed_ip_address: IPAddress | None = None
    description: Name | None = None


class FloatingIpUpdateRequest(Body):
    floatingip: FloatingIpUpdate


SPEC = ListSpec(
    plural="floatingips",
    id_column=FloatingIp.id,
    columns={
        "id": FloatingIp.id,
        "floating_ip_address": FloatingIp.floating_ip_address,
        "floating_network_id": FloatingIp.floating_network_id,
        "port_id": FloatingIp.port_id,
        "fixed_ip_address": FloatingIp.fixed_ip_address,
        "status": FloatingIp.status,
        "description": FloatingIp.description,
        "project_id": FloatingIp.project_id,
        "tenant_id": FloatingIp.project_id,
        "virtual_ip_id": FloatingIp.virtual_ip_id,
        "created_at": FloatingIp.created_at,
        "updated_at": FloatingIp.updated_at,
    },
)


def floating_ip_dict(fip: FloatingIp) -> dict[str, Any]:
    """Neutron's fields (no routers here: router_id is null), plus ``virtual_ip_id``."""
    return {
        "id": fip.id,
        "tenant_id": fip.project_id,
        "project_id": fip.project_id,
        "floating_network_id": fip.floating_network_id,
        "floating_ip_address": fip.floating_ip_address,
        "fixed_ip_address": fip.fixed_ip_address,
        "port_id": fip.port_id,
        "router_id": None,
        "status": fip.status,
        "description": fip.description or "",
        "created_at": timestamp(fip.created_at),
        "updated_at": timestamp(fip.updated_at),
        "tags": [],
        "port_forwardings": [],
        "qos_policy_id": None,
        "dns_name": "",
        "dns_domain": "",
        "revision_number": 0,
        "virtual_ip_id": fip.virtual_ip_id,
    }


# -- the address ----------------------------------------------------------------------------


def _pool(app: AppState, req: FloatingIpCreate) -> list[Subnet]:
    """The external IPv4 subnets the address may come from (subnet_id: that one only)."""
    try:
        network = app.network.get_network(req.floating_network_id)
    except NetworkNotFound:
        raise not_found("Network", req.floating_network_id, "floating_network_id") from None
    if not network.router_external:
        raise bad_request(
            f"Network {network.id} is not a valid external network", "floating_network_id"
        )
    subnets = sorted(
        (app.network.get_subnet(s) for s in network.subnets), key=lambda s: (s.name or "", s.id)
    )
    if req.subnet_id is not None:
        chosen = next((s for s in subnets if s.id == req.subnet_id), None)
        if chosen is None:
            try:
                app.network.get_subnet(req.subnet_id)
            except SubnetNotFound:
                raise not_found("Subnet", req.subnet_id, "subnet_id") from None
            raise bad_request(f"subnet_id {req.subnet_id} is not on network {network.id}",
                              "subnet_id")  # fmt: skip
        if chosen.role != ROLE_EXTERNAL or chosen.ip_version != 4:
            raise bad_request(
                f"subnet_id {chosen.id} ({chosen.cidr}) is not an external IPv4 subnet: "
                "floating IPs come from IPv4 subnets with role external",
                "subnet_id",
            )
        return [chosen]
    pool = [s for s in subnets if s.role == ROLE_EXTERNAL and s.ip_version == 4]
    if not pool:
        raise bad_request(
            f"Network {network.id} has no external IPv4 subnet for floating IPs",
            "floating_network_id",
        )
    return pool


def _subnet_of_address(app: AppState, pool: list[Subnet], address: IPAddress) -> Subnet:
    """The subnet of the pool holding an explicit floating_ip_address (400 otherwise): IPv4,
    never an anycast address (those are VIPs)."""
    text = str(address)
    if address.version != 4:
        raise bad_request(f"floating_ip_address {text}: floating IPs are IPv4 only",
                          "floating_ip_address")  # fmt: skip
    anycast = subnet_holding(app.network, ROLE_ANYCAST, text)
    if anycast is not None:
        raise bad_request(
            f"floating_ip_address {text} is in anycast subnet {anycast.id} ({anycast.cidr}): "
            "VIP addresses cannot be floating IPs",
            "floating_ip_address",
        )
    for subnet in pool:
        if subnet.contains(text):
            return subnet
    raise bad_request(
        f"floating_ip_address {text} is not in " + ", ".join(f"{s.id} ({s.cidr})" for s in pool),
        "floating_ip_address",
    )


def _reserve(app: AppState, fip_id: str, req: FloatingIpCreate, pool: list[Subnet]) -> Any:
    """The address reserved as a port of the driver: the requested one, or the lowest free
    one of the first subnet of the pool that has one."""
    driver = port_admin(app)
    if req.floating_ip_address is not None:
        subnet = _subnet_of_address(app, pool, req.floating_ip_address)
        wanted: list[tuple[Subnet, str | None]] = [(subnet, str(req.floating_ip_address))]
    else:
        wanted = [(s, None) for s in pool]
    for subnet, address in wanted:
        try:
            return driver.create_port(subnet.network_id, None, None,
                                      device_id=f"floatingip-{fip_id}",
                                      device_owner=OWNER_FLOATINGIP,
                                      fixed_ips=[(subnet.id, address)])  # fmt: skip
        except ipam.AddressInUse:
            raise conflict(f"floating_ip_address {address} is already in use",
                           "floating_ip_address") from None  # fmt: skip
        except ipam.SubnetFull:
            continue
        except NetworkException as exc:
            raise bad_request(f"floating_ip_address {address}: {exc}",
                              "floating_ip_address") from None  # fmt: skip
    raise conflict(
        f"No more IP addresses available on network {req.floating_network_id}",
        "subnet_id" if req.subnet_id else "floating_network_id",
    )


# -- the association ------------------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    """What a floating IP is bound to: a load balancer's VIP port and one of its addresses."""

    lb_id: str
    port_id: str
    fixed_ip_address: str


def _binding(
    session: Session,
    ctx: RequestContext,
    port_id: str,
    fixed_ip: IPAddress | None,
    fip: FloatingIp | None,
    floating_ip_address: str,
    lock: bool = False,
) -> Binding:
    """Check an association as Neutron does (the port visible to the caller, an IPv4 fixed IP
    of it, no other floating IP on that fixed IP), and that the port is a live load balancer's
    VIP port. lock: the load balancer's row is locked until the transaction ends (PostgreSQL;
    SQLite writers hold the database lock), so two bindings cannot both make its virtual-ip."""
    port, lb = visible_port(session, port_id, ctx, "port_id")
    if port.device_owner != OWNER_VIP or lb is None:
        raise bad_request(f"Port {port_id} is not a load balancer VIP port", "port_id")
    if lock:
        # Its row alone (the VIP is an eager outer join, which FOR UPDATE cannot lock).
        session.execute(select(LoadBalancer.id).where(LoadBalancer.id == lb.id).with_for_update())
        session.refresh(lb)
    addresses = [a.ip_address for a in port.fixed_ips]
    if fixed_ip is not None:
        if fixed_ip.version != 4:
            raise bad_request(
                f"Bad floatingip request: Cannot process floating IP association with "
                f"{fixed_ip}, since that is not an IPv4 address",
                "fixed_ip_address",
            )
        if str(fixed_ip) not in addresses:
            raise bad_request(
                f"Bad floatingip request: Port {port_id} does not have fixed ip {fixed_ip}",
                "fixed_ip_address",
            )
        address = str(fixed_ip)
    else:
        ipv4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
        if not ipv4:
            raise bad_request(
                f"Bad floatingip request: Port {port_id} does not have any IPv4 address",
                "port_id",
            )
        address = ipv4[0]
    if lb.provisioning_status in (c.PENDING_DELETE, c.DELETED):
        raise conflict(f"Load balancer {lb.id} is {lb.provisioning_status}: no floating IP "
                       "can be bound to it", "port_id")  # fmt: skip
    other = session.scalar(
        select(FloatingIp).where(
            FloatingIp.port_id == port_id,
            FloatingIp.fixed_ip_address == address,
            FloatingIp.id != (fip.id if fip is not None else ""),
        )
    )
    if other is not None:
        raise conflict(
            f"Cannot associate floating IP {floating_ip_address} "
            f"({fip.id if fip is not None else 'new'}) with port {port_id} using fixed IP "
            f"{address}, as that fixed IP already has a floating IP on external network "
            f"{other.floating_network_id}.",
            "port_id",
        )
    return Binding(lb.id, port_id, address)


def _virtual_ip(session: Session, lb_id: str) -> VirtualIp:
    """The load balancer's virtual-ip (made with its first binding)."""
    found = session.scalar(select(VirtualIp).where(VirtualIp.load_balancer_id == lb_id))
    if found is not None:
        return found
    lb = session.get(LoadBalancer, lb_id)
    assert lb is not None and lb.vip is not None and lb.vip.ip_address is not None
    made = VirtualIp(load_balancer_id=lb_id, vip_address=lb.vip.ip_address,
                     vip_port_id=lb.vip.port_id)  # fmt: skip
    session.add(made)
    session.flush()
    return made


def _bound_lb(session: Session, fip: FloatingIp) -> str | None:
    """The load balancer a floating IP is bound to, when a job must tell it (not one being
    deleted: its amphorae, and what they announce, go with it)."""
    if fip.virtual_ip_id is None:
        return None
    vip = session.get(VirtualIp, fip.virtual_ip_id)
    lb = session.get(LoadBalancer, vip.load_balancer_id) if vip is not None else None
    if lb is None or lb.provisioning_status in (c.PENDING_DELETE, c.DELETED):
        return None
    return lb.id


def _bind(session: Session, fip: FloatingIp, binding: Binding | None) -> None:
    """Move the floating IP to binding (None: unbound), queueing the jobs that say so: a
    remove on the load balancer it leaves, an add on the one it joins. No change, no job."""
    if binding is not None and (fip.port_id, fip.fixed_ip_address) == (
        binding.port_id,
        binding.fixed_ip_address,
    ):
        return
    if binding is None and fip.port_id is None:
        return
    old_lb = _bound_lb(session, fip)
    address = fip.floating_ip_address
    if old_lb is not None and (binding is None or binding.lb_id != old_lb):
        jobs.submit(session, jobs.UPDATE_FLOATING_IPS, old_lb, add=[], remove=[address])
    if binding is None:
        fip.port_id = fip.fixed_ip_address = fip.virtual_ip_id = None
    else:
        fip.port_id, fip.fixed_ip_address = binding.port_id, binding.fixed_ip_address
        fip.virtual_ip_id = _virtual_ip(session, binding.lb_id).id
        jobs.submit(session, jobs.UPDATE_FLOATING_IPS, binding.lb_id, add=[address], remove=[])
    fip.status = "DOWN"


# -- routes -----------------------------------------------------------------------------------


@router.post(PATH, status_code=201, tags=["floatingips"])
def create_floating_ip(
    body: FloatingIpCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.floatingip
    if req.project_id and req.tenant_id and req.project_id != req.tenant_id:
        raise bad_request("project_id and tenant_id differ", "tenant_id")
    project_id = check_project(ctx, req.project_id or req.tenant_id)
    if req.fixed_ip_address is not None and req.port_id is None:
        raise bad_request("fixed_ip_address cannot be specified without a port_id",
                          "fixed_ip_address")  # fmt: skip
    pool = _pool(app, req)
    if req.floating_ip_address is not None:
        _subnet_of_address(app, pool, req.floating_ip_address)
    if req.port_id is not None:
        with app.db.session(writer=False) as session:
            _binding(session, ctx, req.port_id, req.fixed_ip_address, None,
                     str(req.floating_ip_address or ""))  # fmt: skip
    fip_id = str(uuid.uuid4())
    port = _reserve(app, fip_id, req, pool)
    address = port.fixed_ips[0]
    try:
        with app.db.session() as session:
            fip = FloatingIp(
                id=fip_id,
                project_id=project_id,
                description=req.description or "",
                floating_network_id=req.floating_network_id,
                floating_subnet_id=address.subnet_id,
                floating_ip_address=address.ip_address,
                floating_port_id=port.id,
                status="DOWN",
            )
            session.add(fip)
            session.flush()
            if req.port_id is not None:  # again, locked: another request may have won
                _bind(session, fip, _binding(session, ctx, req.port_id, req.fixed_ip_address,
                                             fip, address.ip_address, lock=True))  # fmt: skip
            session.flush()
            return {"floatingip": floating_ip_dict(fip)}
    except BaseException as exc:
        with contextlib.suppress(NetworkException):  # nothing half-made
            port_admin(app).delete_port(port.id)
        if isinstance(exc, IntegrityError):
            raise conflict(f"floating IP {address.ip_address} cannot be bound now: {exc.orig}",
                           "port_id") from None  # fmt: skip
        raise


@router.get(PATH, tags=["floatingips"])
def list_floating_ips(
    request: Request, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> PlainJSONResponse:
    return list_response(request, app, ctx, select(FloatingIp), SPEC, floating_ip_dict,
                         FloatingIp.project_id)  # fmt: skip


@router.get(f"{PATH}/{{fip_id}}", tags=["floatingips"])
def show_floating_ip(
    fip_id: str,
    request: Request,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_read()
    with app.db.session(writer=False) as session:
        fip = get_owned(session, FloatingIp, fip_id, ctx, "Floating IP")
        return {"floatingip": select_fields(floating_ip_dict(fip), request.query_params)}


@router.put(f"{PATH}/{{fip_id}}", tags=["floatingips"])
def update_floating_ip(
    fip_id: str,
    body: FloatingIpUpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    """Bind (port_id), unbind (port_id null), move, or describe a floating IP."""
    ctx.require_write()
    req = body.floatingip
    given = req.model_fields_set
    if req.fixed_ip_address is not None and req.port_id is None:
        raise bad_request("fixed_ip_address cannot be specified without a port_id",
                          "fixed_ip_address")  # fmt: skip
    try:
        with app.db.session() as session:
            fip = get_owned(session, FloatingIp, fip_id, ctx, "Floating IP")
            # The same port and fixed IP again: nothing to check, change or queue.
            fixed = req.fixed_ip_address
            unchanged = req.port_id == fip.port_id and (
                fixed is None or str(fixed) == fip.fixed_ip_address
            )
            if "port_id" in given and not unchanged:
                binding = None
                if req.port_id is not None:
                    binding = _binding(session, ctx, req.port_id, req.fixed_ip_address, fip,
                                       fip.floating_ip_address, lock=True)  # fmt: skip
                _bind(session, fip, binding)
            if "description" in given and (req.description or "") != (fip.description or ""):
                fip.description = req.description or ""
            session.flush()
            return {"floatingip": floating_ip_dict(fip)}
    except IntegrityError:
        raise conflict(f"floating IP {fip_id} cannot be bound now: another request won",
                       "port_id") from None  # fmt: skip


@router.delete(f"{PATH}/{{fip_id}}", status_code=204, tags=["floatingips"])
def delete_floating_ip(
    fip_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    """The row goes (with a remove job on the load balancer it was bound to), then its
    reservation port: a crash between the two can leave an orphaned reservation (device_id
    ``floatingip-<id>``, for the operator to delete), never a floating IP without its address."""
    ctx.require_write()
    driver = port_admin(app)
    with app.db.session() as session:
        fip = get_owned(session, FloatingIp, fip_id, ctx, "Floating IP")
        _bind(session, fip, None)
        reservation = fip.floating_port_id
        session.delete(fip)
    if reservation:
        driver.delete_port(reservation)
    return Response(status_code=204)
