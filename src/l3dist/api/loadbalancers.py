"""``/v2/lbaas/loadbalancers``: Octavia's load balancer API with the spec's additions
(``frontend_subnet_id`` / ``frontend_network_id``), ACTIVE_ACTIVE topology with an amphora count,
and the distributor."""

from __future__ import annotations

import contextlib
import ipaddress
import uuid
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import Field, StrictBool, StrictInt
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from l3dist.api.common import (
    AppState,
    Body,
    ReadRoutes,
    check_project,
    claim_id,
    get_context,
    get_owned,
    lock_load_balancer,
    state,
    timestamp,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request, conflict, not_found
from l3dist.api.fields import Id, IPAddress, Name, Tag
from l3dist.api.populated import (
    PopulatedListener,
    PopulatedPool,
    add_graph,
    check_graph,
    graph_dict,
)
from l3dist.api.ports import VIP_DEVICE_PREFIX
from l3dist.api.query import ListSpec, parse_bool
from l3dist.common import constants as c
from l3dist.common import plugins
from l3dist.db import jobs
from l3dist.db.models import (
    BgpPeer,
    Distributor,
    Listener,
    LoadBalancer,
    Member,
    NetPort,
    Pool,
    Vip,
)
from l3dist.db.queries import live_amphora_ids
from l3dist.network.exceptions import (
    AllocateVIPException,
    NetworkException,
    NetworkNotFound,
    SubnetNotFound,
)
from l3dist.network.models import ROLE_ANYCAST, ROLE_FRONTEND, Subnet
from l3dist.network.static import OWNER_VIP

router = APIRouter()

AmphoraCount = Annotated[StrictInt, Field(ge=1, le=c.MAX_AMPHORAE_PER_LB)]
PROVIDERS = ("amphora", "l3dist")


class LoadBalancerCreate(Body):
    # Chosen by an admin or a service (Octavia's provider driver: the same id in both).
    id: uuid.UUID | None = None
    name: Name | None = None
    description: Name | None = None
    admin_state_up: StrictBool = True
    project_id: Id | None = None
    vip_subnet_id: Id | None = None
    vip_network_id: Id | None = None
    vip_port_id: Id | None = None
    vip_address: IPAddress | None = None
    vip_qos_policy_id: Id | None = None
    frontend_subnet_id: Id | None = None
    frontend_network_id: Id | None = None
    topology: Literal["SINGLE", "ACTIVE_ACTIVE"] | None = None
    amphora_count: AmphoraCount | None = None
    distributor_id: Id | None = None
    provider: Literal["amphora", "l3dist"] | None = None
    flavor_id: Id | None = None
    availability_zone: Name | None = None
    # The BGP speaker its amphorae run (default: the controller's); an installed
    # l3dist.speaker_drivers entry point.
    speaker_driver: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=100)
    # Octavia's fully populated create: the children, made with it and built by its one flow.
    listeners: list[PopulatedListener] = Field(default_factory=list)
    pools: list[PopulatedPool] = Field(default_factory=list)


class LoadBalancerUpdate(Body):
    name: Name | None = None
    description: Name | None = None
    admin_state_up: StrictBool | None = None
    vip_qos_policy_id: Id | None = None
    amphora_count: AmphoraCount | None = None
    tags: list[Tag] | None = Field(default=None, max_length=100)


class CreateRequest(Body):
    loadbalancer: LoadBalancerCreate


class UpdateRequest(Body):
    loadbalancer: LoadBalancerUpdate


LIST_SPEC = ListSpec(
    plural="loadbalancers",
    id_column=LoadBalancer.id,
    columns={
        "id": LoadBalancer.id,
        "name": LoadBalancer.name,
        "description": LoadBalancer.description,
        "project_id": LoadBalancer.project_id,
        "provisioning_status": LoadBalancer.provisioning_status,
        "operating_status": LoadBalancer.operating_status,
        "admin_state_up": LoadBalancer.enabled,
        "topology": LoadBalancer.topology,
        "amphora_count": LoadBalancer.amphora_count,
        "provider": LoadBalancer.provider,
        "vip_address": Vip.ip_address,
        "vip_subnet_id": Vip.subnet_id,
        "vip_network_id": Vip.network_id,
        "vip_port_id": Vip.port_id,
        "frontend_subnet_id": Vip.frontend_subnet_id,
        "distributor_id": Vip.distributor_id,
        "created_at": LoadBalancer.created_at,
        "updated_at": LoadBalancer.updated_at,
    },
    converters={"admin_state_up": parse_bool, "amphora_count": int},
)


def to_dict(lb: LoadBalancer) -> dict[str, Any]:
    vip = lb.vip
    return {
        "id": lb.id,
        "name": lb.name or "",
        "description": lb.description or "",
        "admin_state_up": lb.enabled,
        "project_id": lb.project_id,
        "tenant_id": lb.project_id,
        "provisioning_status": lb.provisioning_status,
        "operating_status": lb.operating_status,
        "vip_address": vip.ip_address if vip else None,
        "vip_port_id": vip.port_id if vip else None,
        "vip_subnet_id": vip.subnet_id if vip else None,
        "vip_network_id": vip.network_id if vip else None,
        "vip_qos_policy_id": vip.qos_policy_id if vip else None,
        "frontend_subnet_id": vip.frontend_subnet_id if vip else None,
        "frontend_network_id": vip.frontend_network_id if vip else None,
        "distributor_id": vip.distributor_id if vip else None,
        "topology": lb.topology,
        "amphora_count": lb.amphora_count,
        "listeners": [{"id": li.id} for li in lb.listeners if li.provisioning_status != c.DELETED],
        "pools": [{"id": p.id} for p in lb.pools if p.provisioning_status != c.DELETED],
        "provider": lb.provider,
        "flavor_id": lb.flavor_id,
        "availability_zone": lb.availability_zone,
        "speaker_driver": lb.speaker_driver,
        "created_at": timestamp(lb.created_at),
        "updated_at": timestamp(lb.updated_at),
        "tags": lb.tags or [],
    }


def base_query() -> Any:
    return (
        select(LoadBalancer)
        .options(selectinload(LoadBalancer.listeners), selectinload(LoadBalancer.pools))
        .outerjoin(Vip, Vip.load_balancer_id == LoadBalancer.id)
        .where(LoadBalancer.provisioning_status != c.DELETED)
    )


# -- VIP and front-end subnet resolution ----------------------------------------------------


def _subnet(app: AppState, subnet_id: str, field: str) -> Subnet:
    try:
        return app.network.get_subnet(subnet_id)
    except SubnetNotFound:
        raise not_found("Subnet", subnet_id, field) from None


def _pick_subnet(
    app: AppState,
    subnet_id: str | None,
    network_id: str | None,
    version: int | None,
    prefix: str,
) -> Subnet | None:
    """The subnet named by subnet_id, or the one of network_id that fits the IP version."""
    if subnet_id:
        subnet = _subnet(app, subnet_id, f"{prefix}_subnet_id")
        if network_id and subnet.network_id != network_id:
            raise bad_request(
                f"{prefix}_subnet_id {subnet_id} is not on {prefix}_network_id {network_id}",
                f"{prefix}_network_id",
            )
        return subnet
    if network_id:
        try:
            network = app.network.get_network(network_id)
        except NetworkNotFound:
            raise not_found("Network", network_id, f"{prefix}_network_id") from None
        subnets = [app.network.get_subnet(s) for s in network.subnets]
        subnets.sort(key=lambda s: s.ip_version)
        for subnet in subnets:
            if version is None or subnet.ip_version == version:
                return subnet
        raise bad_request(
            f"{prefix}_network_id {network_id} has no IPv{version} subnet",
            f"{prefix}_network_id",
        )
    return None


def check_role(subnet: Subnet, role: str, field: str, what: str) -> None:
    if subnet.role != role:
        raise bad_request(
            f"{field} {subnet.id} ({subnet.cidr}) is a {subnet.role} subnet: {what} must come "
            f"from a subnet with role {role}",
            field,
        )


def _default_frontend(app: AppState, version: int) -> Subnet:
    """The front end when the request names none: the operator's front-end subnet of the
    VIP's IP version (the first by name when there are several)."""
    candidates = sorted(
        (
            subnet
            for network in app.network.networks.values()
            for subnet in (app.network.get_subnet(s) for s in network.subnets)
            if subnet.role == ROLE_FRONTEND and subnet.ip_version == version
        ),
        key=lambda subnet: subnet.name or subnet.id,
    )
    if not candidates:
        raise bad_request(
            f"frontend_subnet_id is required: there is no IPv{version} front-end subnet",
            "frontend_subnet_id",
        )
    return candidates[0]


def address_taken(session: Session, address: str) -> str | None:
    """What else already uses the address (a member of any project, a BGP peer: the
    router), or None. Other VIPs, ports and gateways are the network driver's IPAM's."""
    if session.scalar(select(Member.id).where(Member.ip_address == address).limit(1)):
        return "a member"
    if session.scalar(select(BgpPeer.id).where(BgpPeer.peer_ip == address).limit(1)):
        return "a BGP peer (router)"
    return None


def _allocate_vip(app: AppState, lb_id: str, subnet: Subnet, address: str | None) -> Any:
    """The VIP reserved by the network driver (the one place addresses are handed out); the
    worker's AllocateVip finds the same reservation."""
    view = SimpleNamespace(id=lb_id, vip=SimpleNamespace(subnet_id=subnet.id, ip_address=address))
    try:
        return app.network.allocate_vip(view)
    except AllocateVIPException as exc:
        if address is not None:
            raise conflict(f"vip_address {address} cannot be used: {exc}", "vip_address") from None
        raise conflict(f"vip_subnet_id {subnet.id}: {exc}", "vip_subnet_id") from None


def _resolve_distributor(session: Session, body: LoadBalancerCreate, topology: str) -> str | None:
    if topology != c.TOPOLOGY_ACTIVE_ACTIVE:
        if body.distributor_id:
            raise bad_request(
                "distributor_id is only valid with topology ACTIVE_ACTIVE", "distributor_id"
            )
        return None
    if body.distributor_id:
        distributor = session.get(Distributor, body.distributor_id)
        if distributor is None:
            raise not_found("Distributor", body.distributor_id, "distributor_id")
    else:
        found = list(session.scalars(select(Distributor).limit(2)))
        if len(found) != 1:
            raise bad_request(
                "distributor_id is required for an ACTIVE_ACTIVE load balancer "
                f"({'no distributor exists' if not found else 'several distributors exist'})",
                "distributor_id",
            )
        distributor = found[0]
    # Its amphorae get the distributor's speakers and peers: only once the worker checked them
    # (and not while a change of them is being checked).
    if distributor.status != c.ACTIVE:
        raise conflict(
            f"distributor_id {distributor.id} is {distributor.status}, not ACTIVE"
            + (" (see its /status)" if distributor.status == c.ERROR else ""),
            "distributor_id",
        )
    return str(distributor.id)


def _vip_reservation(app: AppState, req: LoadBalancerCreate, project_id: str) -> dict[str, Any]:
    """What a VIP reservation (``POST /v2/ports``, see ``vip_ports``) that ``vip_port_id`` names
    sets on the create: the load balancer's id (its device id), the VIP subnet and address;
    400 naming the field when the port is no reservation of this project or the request
    says otherwise."""
    with app.db.session(writer=False) as session:
        port = session.get(NetPort, req.vip_port_id)
        if port is None or (port.project_id or project_id) != project_id:
            raise bad_request(f"vip_port_id {req.vip_port_id} not found", "vip_port_id")
        device = port.device_id or ""
        if (
            port.device_owner != OWNER_VIP
            or not device.startswith(VIP_DEVICE_PREFIX)
            or not port.fixed_ips
        ):
            raise bad_request(
                f"vip_port_id {port.id} is not a VIP reservation (device_owner {OWNER_VIP}, "
                "device_id lb-<id>)",
                "vip_port_id",
            )
        lb_id, fixed = device[len(VIP_DEVICE_PREFIX) :], port.fixed_ips[0]
        port_id = port.id
        taken = session.get(LoadBalancer, lb_id)
        subnet_id, address = fixed.subnet_id, fixed.ip_address
    if taken is not None:
        raise bad_request(f"vip_port_id {port_id} is load balancer {lb_id}'s VIP", "vip_port_id")
    if req.id is not None and str(req.id) != lb_id:
        raise bad_request(f"id {req.id}: vip_port_id {port_id} is reserved for {lb_id}", "id")
    if req.vip_subnet_id is not None and req.vip_subnet_id != subnet_id:
        raise bad_request(
            f"vip_subnet_id {req.vip_subnet_id}: vip_port_id {port_id} is on {subnet_id}",
            "vip_subnet_id",
        )
    if req.vip_address is not None and str(req.vip_address) != address:
        raise bad_request(
            f"vip_address {req.vip_address}: vip_port_id {port_id} holds {address}",
            "vip_address",
        )
    return {
        "id": uuid.UUID(lb_id),
        "vip_subnet_id": subnet_id,
        "vip_network_id": None,
        "vip_address": ipaddress.ip_address(address),
    }


# -- routes ---------------------------------------------------------------------------------


@router.post("/v2/lbaas/loadbalancers", status_code=201, tags=["loadbalancers"])
def create_load_balancer(
    body: CreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.loadbalancer
    project_id = check_project(ctx, req.project_id)
    reserved = _vip_reservation(app, req, project_id) if req.vip_port_id else None
    if reserved is not None:
        # The reservation decides the id, subnet and address (checked against the request).
        req = req.model_copy(update=reserved)
    if req.flavor_id:
        raise bad_request("flavor_id: no flavors are defined", "flavor_id")
    if req.speaker_driver is not None and req.speaker_driver not in (
        known := plugins.available(plugins.SPEAKER)
    ):
        raise bad_request(
            f"speaker_driver {req.speaker_driver!r} is not installed ({', '.join(known)})",
            "speaker_driver",
        )
    wanted_version = req.vip_address.version if req.vip_address else None
    vip_subnet = _pick_subnet(app, req.vip_subnet_id, req.vip_network_id, wanted_version, "vip")
    if vip_subnet is None:
        raise bad_request("one of vip_subnet_id or vip_network_id is required", "vip_subnet_id")
    if req.vip_address is not None and not vip_subnet.contains(str(req.vip_address)):
        raise bad_request(
            f"vip_address {req.vip_address} is not in vip subnet {vip_subnet.id} "
            f"({vip_subnet.cidr})",
            "vip_address",
        )
    # Every topology's VIP is announced to the fabric: it comes only from an anycast pool.
    check_role(
        vip_subnet,
        ROLE_ANYCAST,
        "vip_network_id" if req.vip_network_id and not req.vip_subnet_id else "vip_subnet_id",
        "a VIP",
    )
    frontend = _pick_subnet(
        app, req.frontend_subnet_id, req.frontend_network_id, vip_subnet.ip_version, "frontend"
    )
    if frontend is None:
        frontend = _default_frontend(app, vip_subnet.ip_version)
    elif frontend.ip_version != vip_subnet.ip_version:
        raise bad_request(
            f"frontend_subnet_id {frontend.id} is IPv{frontend.ip_version} but the VIP is "
            f"IPv{vip_subnet.ip_version}",
            "frontend_subnet_id",
        )
    check_role(
        frontend,
        ROLE_FRONTEND,
        "frontend_network_id"
        if req.frontend_network_id and not req.frontend_subnet_id
        else "frontend_subnet_id",
        "the front end (the next hops)",
    )
    topology = req.topology or (
        c.TOPOLOGY_ACTIVE_ACTIVE
        if req.amphora_count and req.amphora_count > 1
        else c.TOPOLOGY_SINGLE
    )
    if topology == c.TOPOLOGY_SINGLE and req.amphora_count not in (None, 1):
        raise bad_request("amphora_count must be 1 for topology SINGLE", "amphora_count")
    count = req.amphora_count or (2 if topology == c.TOPOLOGY_ACTIVE_ACTIVE else 1)
    check_graph(app, req.listeners, req.pools)

    requested = str(req.vip_address) if req.vip_address is not None else None
    with app.db.session() as session:
        if reserved is not None:  # its id was chosen by the admin or service that reserved it
            claimed = {"id": str(req.id)}
            if session.get(LoadBalancer, claimed["id"]) is not None:
                raise conflict(f"id {claimed['id']} is already taken", "id")
        else:
            claimed = claim_id(session, LoadBalancer, req.id, ctx)
        distributor_id = _resolve_distributor(session, req, topology)
        if requested is not None and (holder := address_taken(session, requested)):
            raise conflict(f"vip_address {requested} is in use by {holder}", "vip_address")
    lb_id = claimed.get("id") or str(uuid.uuid4())
    vip = _allocate_vip(app, lb_id, vip_subnet, requested)
    try:
        with app.db.session() as session:
            if requested is None and (holder := address_taken(session, vip.ip_address)):
                raise conflict(
                    f"vip_subnet_id {vip_subnet.id}: the next free address {vip.ip_address} "
                    f"is in use by {holder}; give vip_address",
                    "vip_address",
                )
            lb = LoadBalancer(
                id=lb_id,
                project_id=project_id,
                name=req.name,
                description=req.description,
                enabled=req.admin_state_up,
                provisioning_status=c.PENDING_CREATE,
                operating_status=c.OFFLINE,
                topology=topology,
                amphora_count=count,
                provider=req.provider or "amphora",
                availability_zone=req.availability_zone,
                speaker_driver=req.speaker_driver,
                tags=req.tags,
            )
            lb.vip = Vip(
                ip_address=vip.ip_address,
                port_id=vip.port_id,
                subnet_id=vip_subnet.id,
                network_id=vip_subnet.network_id,
                qos_policy_id=req.vip_qos_policy_id,
                octavia_owned=True,
                distributor_id=distributor_id,
                frontend_subnet_id=frontend.id,
                frontend_network_id=frontend.network_id,
            )
            session.add(lb)
            session.flush()
            populated = bool(req.listeners or req.pools)
            if populated:
                add_graph(session, lb, req.listeners, req.pools, ctx)
                session.expire(lb, ["listeners", "pools"])
            jobs.submit(session, jobs.CREATE_LOAD_BALANCER, lb.id)
            if populated:
                return {"loadbalancer": {**to_dict(lb), **graph_dict(lb)}}
            return {"loadbalancer": to_dict(lb)}
    except BaseException as exc:
        # Nothing half-made: the reservation goes with the refused load balancer (unless it
        # was made before, by POST /v2/ports: a refusal changes nothing).
        if reserved is None:
            with contextlib.suppress(NetworkException):
                app.network.deallocate_vip(vip)
        if isinstance(exc, IntegrityError):
            raise conflict(
                f"vip_address {vip.ip_address} is already in use", "vip_address"
            ) from None
        raise


ReadRoutes(
    path="/v2/lbaas/loadbalancers",
    id_param="lb_id",
    model=LoadBalancer,
    key="loadbalancer",
    kind="Load Balancer",
    spec=LIST_SPEC,
    to_dict=to_dict,
    tag="loadbalancers",
    query=base_query,
).add_to(router)


@router.put("/v2/lbaas/loadbalancers/{lb_id}", tags=["loadbalancers"])
def update_load_balancer(
    lb_id: str,
    body: UpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_write()
    req = body.loadbalancer
    with app.db.session() as session:
        lb = get_owned(session, LoadBalancer, lb_id, ctx, "Load Balancer")
        if req.amphora_count is not None and lb.topology != c.TOPOLOGY_ACTIVE_ACTIVE:
            raise bad_request(
                "amphora_count can only change for topology ACTIVE_ACTIVE", "amphora_count"
            )
        lock_load_balancer(session, lb.id)
        session.refresh(lb)
        if req.amphora_count is not None and req.amphora_count != lb.amphora_count:
            jobs.submit(session, jobs.SCALE_LOAD_BALANCER, lb.id, amphora_count=req.amphora_count)
        else:
            jobs.submit(session, jobs.APPLY_LOAD_BALANCER, lb.id)
        for name in ("name", "description", "tags", "amphora_count"):
            value = getattr(req, name)
            if value is not None:
                setattr(lb, name, value)
        if req.admin_state_up is not None:
            lb.enabled = req.admin_state_up
        if req.vip_qos_policy_id is not None and lb.vip is not None:
            lb.vip.qos_policy_id = req.vip_qos_policy_id
        session.flush()
        return {"loadbalancer": to_dict(lb)}


@router.delete("/v2/lbaas/loadbalancers/{lb_id}", status_code=204, tags=["loadbalancers"])
def delete_load_balancer(
    lb_id: str,
    cascade: bool = False,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> Response:
    ctx.require_write()
    with app.db.session() as session:
        lb = get_owned(session, LoadBalancer, lb_id, ctx, "Load Balancer")
        children = (
            session.scalar(
                select(func.count())
                .select_from(Listener)
                .where(
                    Listener.load_balancer_id == lb.id, Listener.provisioning_status != c.DELETED
                )
            )
            or 0
        )
        children += (
            session.scalar(
                select(func.count())
                .select_from(Pool)
                .where(Pool.load_balancer_id == lb.id, Pool.provisioning_status != c.DELETED)
            )
            or 0
        )
        if children and not cascade:
            raise bad_request(
                f"Cannot delete Load Balancer {lb_id} - it has children "
                "(delete them first, or use cascade=true)",
                "cascade",
            )
        lock_load_balancer(session, lb.id, c.PENDING_DELETE)
        jobs.submit(session, jobs.DELETE_LOAD_BALANCER, lb.id)
    return Response(status_code=204)


@router.put("/v2/lbaas/loadbalancers/{lb_id}/failover", status_code=202, tags=["loadbalancers"])
def failover_load_balancer(
    lb_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_admin()
    with app.db.session() as session:
        lb = get_owned(session, LoadBalancer, lb_id, ctx, "Load Balancer")
        lock_load_balancer(session, lb.id)
        live = live_amphora_ids(session, lb.id)
        if len(live) < lb.amphora_count:
            # The repair of a load balancer short of amphorae (its create failed, say):
            # build what is missing, back to its amphora_count.
            jobs.submit(session, jobs.SCALE_LOAD_BALANCER, lb.id, amphora_count=lb.amphora_count)
            return Response(status_code=202)
        for amphora_id in live:  # one at a time, N+1 each
            jobs.submit(session, jobs.FAILOVER_AMPHORA, lb.id, amphora_id=amphora_id, drain=True)
    return Response(status_code=202)


@router.get("/v2/lbaas/loadbalancers/{lb_id}/status", tags=["loadbalancers"])
def load_balancer_status_tree(
    lb_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    ctx.require_read()

    def status(obj: Any) -> dict[str, Any]:
        return {
            "id": obj.id,
            "name": obj.name or "",
            "provisioning_status": obj.provisioning_status,
            "operating_status": obj.operating_status,
        }

    with app.db.session() as session:
        lb = get_owned(session, LoadBalancer, lb_id, ctx, "Load Balancer")
        listeners = []
        for listener in lb.listeners:
            if listener.provisioning_status == c.DELETED:
                continue
            entry = status(listener)
            pools = []
            pool = listener.default_pool
            if pool is not None and pool.provisioning_status != c.DELETED:
                pool_entry = status(pool)
                pool_entry["members"] = [
                    {**status(m), "address": m.ip_address, "protocol_port": m.protocol_port}
                    for m in pool.members
                    if m.provisioning_status != c.DELETED
                ]
                hm = pool.health_monitor
                if hm is not None and hm.provisioning_status != c.DELETED:
                    pool_entry["health_monitor"] = {**status(hm), "type": hm.type}
                pools.append(pool_entry)
            entry["pools"] = pools
            listeners.append(entry)
        # Beyond Octavia's tree: why the load balancer is in ERROR (its last failed job's
        # error, e.g. "no free amphora host ..."), null otherwise.
        reason = jobs.last_failure(session, lb.id) if lb.provisioning_status == c.ERROR else None
        return {
            "statuses": {
                "loadbalancer": {**status(lb), "status_reason": reason, "listeners": listeners}
            }
        }
