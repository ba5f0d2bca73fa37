"""``/v2/ports``: a read-only, Neutron-shaped view of the static network driver's ports.

OpenStack clients resolve ``--port <id or name>`` through the network service before they
create or move a floating IP (``openstack floating ip create ext-net --port ...``), so this API
answers ``GET /v2.0/ports[/{id}]``. Ports are made only by the driver (VIPs, front ends,
floating IP reservations), except VIP reservations (``vip_ports``).

Who sees what: an admin every port; a tenant only the VIP ports of its own load balancers (a
VIP port's ``device_id`` is ``lb-<load balancer id>``; its tenant is the load balancer's
project) and the VIP reservations made for its project (``vip_ports``: a VIP port before its
load balancer exists). That same rule decides which ports a tenant may bind a floating IP to
(``visible_port``), so listing and binding never disagree (a reservation is refused there:
it is no load balancer's VIP yet).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Select, and_, func, literal, or_, select
from sqlalchemy.orm import Session, object_session

from l3dist.api.common import (
    AppState,
    PlainJSONResponse,
    get_context,
    list_response,
    state,
    timestamp,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request, not_found
from l3dist.api.query import ListSpec, select_fields
from l3dist.common import constants as c
from l3dist.db.models import LoadBalancer, NetPort
from l3dist.network.models import Port
from l3dist.network.static import OWNER_VIP

router = APIRouter()
VIP_DEVICE_PREFIX = "lb-"


@runtime_checkable
class PortAdmin(Protocol):
    """What the API needs of a driver that manages its own ports (the static driver): a
    reservation of an address (a floating IP's) and its release."""

    def create_port(
        self, network_id: str, namespace: str | None, ifname: str | None, device_id: str,
        device_owner: str, fixed_ips: list[tuple[str, str | None]] | None = None,
        default_routes: bool = False,
    ) -> Port: ...  # fmt: skip

    def delete_port(self, port_id: str) -> None: ...


def port_admin(app: AppState) -> PortAdmin:
    """The driver's port side, or 400 when the configured driver does not manage ports."""
    if not isinstance(app.network, PortAdmin):
        raise bad_request(
            "the configured network driver does not manage ports (use the static driver)"
        )
    return app.network


def _vip_join() -> Any:
    """A port joined to the load balancer it is the VIP port of (none for other ports)."""
    return and_(
        NetPort.device_owner == OWNER_VIP,
        NetPort.device_id == literal(VIP_DEVICE_PREFIX) + LoadBalancer.id,
    )


_PROJECT = func.coalesce(NetPort.project_id, LoadBalancer.project_id)

SPEC = ListSpec(
    plural="ports",
    id_column=NetPort.id,
    columns={
        "id": NetPort.id,
        "name": NetPort.name,
        "network_id": NetPort.network_id,
        "device_id": NetPort.device_id,
        "device_owner": NetPort.device_owner,
        "mac_address": NetPort.mac_address,
        "status": NetPort.status,
        "project_id": _PROJECT,
        "tenant_id": _PROJECT,
        "created_at": NetPort.created_at,
        "updated_at": NetPort.updated_at,
    },
)


def load_balancer_of(session: Session, port: NetPort) -> LoadBalancer | None:
    """The load balancer whose VIP port this is (not DELETED), or None."""
    device = port.device_id or ""
    if port.device_owner != OWNER_VIP or not device.startswith(VIP_DEVICE_PREFIX):
        return None
    lb = session.get(LoadBalancer, device[len(VIP_DEVICE_PREFIX) :])
    if lb is None or lb.provisioning_status == c.DELETED:
        return None
    return lb


def port_dict(port: NetPort) -> dict[str, Any]:
    """Neutron's port fields; a VIP port's project is its load balancer's."""
    session = object_session(port)
    lb = load_balancer_of(session, port) if session is not None else None
    project = port.project_id or (lb.project_id if lb is not None else None)
    return {
        "id": port.id,
        "name": port.name or "",
        "description": "",
        "network_id": port.network_id,
        "tenant_id": project,
        "project_id": project,
        "device_id": port.device_id or "",
        "device_owner": port.device_owner or "",
        "mac_address": port.mac_address,
        "status": port.status,
        "admin_state_up": port.admin_state_up,
        "fixed_ips": [
            {"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips
        ],
        "security_groups": [],
        "allowed_address_pairs": [],
        "tags": [],
        "binding:vnic_type": "normal",
        "created_at": timestamp(port.created_at),
        "updated_at": timestamp(port.updated_at),
    }


def visible_query(ctx: RequestContext) -> Select[Any]:
    """Every port the caller may see (see the module's docstring)."""
    stmt = select(NetPort).outerjoin(LoadBalancer, _vip_join())
    if ctx.is_admin:
        return stmt
    return stmt.where(
        or_(
            and_(
                LoadBalancer.project_id == ctx.project_id,
                LoadBalancer.provisioning_status != c.DELETED,
            ),
            and_(NetPort.project_id == ctx.project_id, NetPort.device_owner == OWNER_VIP),
        )
    )


def visible_port(
    session: Session, port_id: str, ctx: RequestContext, field: str | None = None
) -> tuple[NetPort, LoadBalancer | None]:
    """A port the caller may see, with the load balancer it is the VIP port of (None for
    another port, which only an admin sees); 404 naming field otherwise, as if absent."""
    port = session.get(NetPort, port_id)
    lb = load_balancer_of(session, port) if port is not None else None
    if port is None or not (ctx.is_admin or _own(port, lb, ctx)):
        raise not_found("Port", port_id, field)
    return port, lb


def _own(port: NetPort, lb: LoadBalancer | None, ctx: RequestContext) -> bool:
    if lb is not None:
        return bool(lb.project_id == ctx.project_id)
    return port.device_owner == OWNER_VIP and port.project_id == ctx.project_id


@router.get("/v2/ports", tags=["network"])
def list_ports(
    request: Request, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> PlainJSONResponse:
    ctx.require_read()
    return list_response(request, app, ctx, visible_query(ctx), SPEC, port_dict)


@router.get("/v2/ports/{port_id}", tags=["network"])
def show_port(
    port_id: str,
    request: Request,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_read()
    with app.db.session(writer=False) as session:
        port, _ = visible_port(session, port_id, ctx)
        return {"port": select_fields(port_dict(port), request.query_params)}
