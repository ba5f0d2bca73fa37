"""What a VIP route must be before it is accepted (the spec's Register VIP, checked once here so
that no amphora is ever asked what it would refuse, and no request half-succeeds).

Each check raises a 4xx ApiError naming the field; none writes anything. The order: the
distributor (404, 409 unless ACTIVE), vip_ip (route safety: an anycast host address nobody else
holds), nexthop_ip (a front-end address of the VIP's family that is no router, gateway or
amphora), peer_id (a peer of the distributor's speaker of that family), then duplicates.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from l3dist.api.common import AppState
from l3dist.api.errors import bad_request, conflict, not_found
from l3dist.api.loadbalancers import address_taken
from l3dist.bgp import policy
from l3dist.common import constants as c
from l3dist.db.models import Amphora, BgpPeer, BgpSpeaker, Distributor, LoadBalancer, Vip, VipRoute
from l3dist.distributor import l3_bgp_config
from l3dist.network.exceptions import SubnetNotFound
from l3dist.network.models import ROLE_ANYCAST, ROLE_FRONTEND, Subnet
from l3dist.network.roles import anycast_prefixes, subnet_holding, subnets_with_role

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Checked:
    """A route that passed every check: where its VIP's address is reserved from."""

    vip_subnet: Subnet


def check_distributor(distributor: Distributor) -> None:
    """Routes go to the amphorae of a distributor the worker checked, and not while a change
    of its speakers is being rolled out (409, as load balancer create does)."""
    if distributor.status != c.ACTIVE:
        raise conflict(
            f"distributor_id {distributor.id} is {distributor.status}, not ACTIVE"
            + (" (see its /status)" if distributor.status == c.ERROR else ""),
            "distributor_id",
        )


def _vip_subnet(app: AppState, vip: IPAddress) -> Subnet:
    """Route safety: the anycast subnet the VIP is a host address of."""
    prefixes = anycast_prefixes(app.network)
    if not prefixes:
        raise bad_request(f"vip_ip {vip}: there is no anycast subnet to route it in", "vip_ip")
    refused = policy.refusal(vip, prefixes)  # the rule every amphora applies again
    if refused is not None:
        raise bad_request(refused.replace("this amphora's", "the"), "vip_ip")
    subnet = subnet_holding(app.network, ROLE_ANYCAST, str(vip))
    assert subnet is not None  # refusal() found it inside an anycast prefix
    return subnet


def _vip_holder(session: Session, project_id: str, vip: IPAddress) -> None:
    """409 vip_ip when something else uses the address: a member or a router (as a load
    balancer's vip_address), a load balancer's VIP (its amphorae announce it: the route would
    add a next hop to it), another project's VIP route."""
    holder = address_taken(session, str(vip))
    lb = session.scalar(
        select(LoadBalancer.id)
        .join(Vip, Vip.load_balancer_id == LoadBalancer.id)
        .where(Vip.ip_address == str(vip), LoadBalancer.provisioning_status != c.DELETED)
        .limit(1)
    )
    if lb is not None:
        holder = f"load balancer {lb} (its amphorae announce it)"
    other = session.scalar(
        select(VipRoute.id)
        .where(VipRoute.vip_ip == str(vip), VipRoute.project_id != project_id)
        .limit(1)
    )
    if other is not None:
        holder = "another project's VIP route"
    if holder is not None:
        raise conflict(f"vip_ip {vip} is in use by {holder}", "vip_ip")


def _frontend_subnet(app: AppState, distributor: Distributor, nexthop: IPAddress) -> Subnet:
    """The front-end subnet holding the next hop: the distributor's own when it names one of
    that family (its amphorae's front end), else any with role frontend."""
    subnet = subnet_holding(app.network, ROLE_FRONTEND, str(nexthop))
    own: Subnet | None = None
    if distributor.frontend_subnet:
        try:
            own = app.network.get_subnet(distributor.frontend_subnet)
        except SubnetNotFound:
            own = None
    if own is not None and own.ip_version == nexthop.version and not own.contains(str(nexthop)):
        raise bad_request(
            f"nexthop_ip {nexthop} is not on the distributor's front-end subnet {own.id} "
            f"({own.cidr})",
            "nexthop_ip",
        )
    if subnet is None:
        pools = [s.cidr for s in subnets_with_role(app.network, ROLE_FRONTEND)
                 if s.ip_version == nexthop.version]  # fmt: skip
        raise bad_request(
            f"nexthop_ip {nexthop} is not on a front-end subnet "
            f"({', '.join(pools) or f'there is no IPv{nexthop.version} front-end subnet'})",
            "nexthop_ip",
        )
    return subnet


def _nexthop_subnet(
    app: AppState, distributor: Distributor, vip: IPAddress, nexthop: IPAddress
) -> Subnet:
    """The front-end subnet the next hop is on, of the VIP's family, and not its gateway."""
    if nexthop.version != vip.version:
        raise bad_request(
            f"nexthop_ip {nexthop} is IPv{nexthop.version} but vip_ip {vip} is IPv{vip.version}",
            "nexthop_ip",
        )
    kind = policy.never_routed(nexthop)
    if kind is not None:
        raise bad_request(f"nexthop_ip {nexthop} is {kind}, never a next hop", "nexthop_ip")
    subnet = _frontend_subnet(app, distributor, nexthop)
    if subnet.gateway_ip and ipaddress.ip_address(subnet.gateway_ip) == nexthop:
        raise conflict(
            f"nexthop_ip {nexthop} is the gateway of subnet {subnet.id} (the router: a loop)",
            "nexthop_ip",
        )
    return subnet


def _nexthop_holder(session: Session, nexthop: IPAddress) -> None:
    """409 nexthop_ip for a router (a loop) or an amphora's front end (an amphora announces
    its own load balancer's VIP through Register Amphora, with its listeners checked)."""
    holder: str | None = None
    if session.scalar(select(BgpPeer.id).where(BgpPeer.peer_ip == str(nexthop)).limit(1)):
        holder = "a BGP peer (the router: a loop)"
    elif amphora := session.scalar(
        select(Amphora.id)
        .where(Amphora.frontend_ip == str(nexthop), Amphora.status.in_(c.LIVE_AMPHORA_STATUSES))
        .limit(1)
    ):
        holder = f"amphora {amphora}'s front end (a load balancer announces its own VIP)"
    if holder is not None:
        raise conflict(f"nexthop_ip {nexthop} is {holder}", "nexthop_ip")


def _check_peer(session: Session, distributor: Distributor, vip: IPAddress, peer_id: str | None
                ) -> None:  # fmt: skip
    """A named peer is one of the distributor's speakers' peers, of the VIP's family; without
    one, the route goes to every peer of that family, so there must be one."""
    speakers = [
        s
        for s in (session.get(BgpSpeaker, i) for i in
                  l3_bgp_config.speakers_in_use(distributor.config_data))
        if s is not None
    ]  # fmt: skip
    if peer_id is None:
        if not any(s.ip_version == vip.version and s.peers for s in speakers):
            raise conflict(
                f"vip_ip {vip}: distributor {distributor.id} has no IPv{vip.version} BGP peer "
                "to announce it to",
                "vip_ip",
            )
        return
    peer = session.get(BgpPeer, peer_id)
    if peer is None:
        raise not_found("BGP peer", peer_id, "peer_id")
    if not any(peer in s.peers for s in speakers):
        raise bad_request(
            f"peer_id {peer_id} is not a peer of distributor {distributor.id}'s BGP speakers",
            "peer_id",
        )
    version = ipaddress.ip_address(peer.peer_ip).version
    if version != vip.version:
        raise bad_request(
            f"peer_id {peer_id} is an IPv{version} peer but vip_ip {vip} is IPv{vip.version}",
            "peer_id",
        )


def _check_duplicate(
    session: Session, distributor_id: str, vip: IPAddress, nexthop: IPAddress, peer_id: str | None
) -> None:
    """One route per VIP, next hop and peer; a route to every peer covers each single peer
    (as the agent's own registrations: never both for the same VIP and next hop)."""
    same = session.scalars(
        select(VipRoute).where(
            VipRoute.distributor_id == distributor_id,
            VipRoute.vip_ip == str(vip),
            VipRoute.nexthop_ip == str(nexthop),
        )
    ).all()
    for route in same:
        theirs = route.distributor_l3_bgp_peer_id
        if theirs is None or peer_id is None or theirs == peer_id:
            scope = f"peer {theirs}" if theirs else "every peer"
            raise conflict(
                f"vip_ip {vip} with nexthop_ip {nexthop} is already routed to {scope} by VIP "
                f"route {route.id}",
                "vip_ip",
            )


def check_addresses(
    app: AppState, distributor: Distributor, vip: IPAddress, nexthop: IPAddress
) -> Checked:
    """The checks the network driver answers (no database session open: on SQLite the
    driver's own session would wait for it)."""
    vip_subnet = _vip_subnet(app, vip)
    _nexthop_subnet(app, distributor, vip, nexthop)
    return Checked(vip_subnet)


def check_records(
    session: Session,
    project_id: str,
    distributor: Distributor,
    vip: IPAddress,
    nexthop: IPAddress,
    peer_id: str | None,
) -> None:
    """The checks the database answers, in the caller's transaction."""
    check_distributor(distributor)
    _vip_holder(session, project_id, vip)
    _nexthop_holder(session, nexthop)
    _check_peer(session, distributor, vip, peer_id)
    _check_duplicate(session, distributor.id, vip, nexthop, peer_id)
