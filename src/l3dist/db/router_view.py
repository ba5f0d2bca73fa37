"""What each router holds of a load balancer's addresses (its VIP and floating IPs), against
what l3dist intends: the front-end IPs of the amphorae registered behind its virtual-ip.

Per router and intended next hop, one state:
- ``installed``: the router accepted the path (post-policy);
- ``pending``: the router received it, its policy's decision not confirmed yet;
- ``rejected``: the router received it and its inbound policy refused it;
- ``session_down``: not received, and the announcing amphora has no BGP session up there;
- ``not_received``: not received although a session is up (or the speaker is a distributor's);
- ``stale``: the router's BMP session is down; its last view is shown.
A path for the address with a next hop l3dist does not intend is listed as ``unexpected``.
A router's name and the peers' addresses are shown to admins only; a tenant sees routers by
their position.
"""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any

from sqlalchemy import select

from l3dist.db.models import (
    Amphora,
    BmpPath,
    BmpPeer,
    BmpRouter,
    LoadBalancer,
    VirtualIp,
    VirtualIpInterface,
)
from l3dist.db.queries import lb_addresses

STATES = ("installed", "pending", "rejected", "session_down", "not_received", "stale")


def host_prefix(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def _ms(later: datetime.datetime | None, earlier: datetime.datetime | None) -> float | None:
    if later is None or earlier is None or later < earlier:
        return None
    return round((later - earlier).total_seconds() * 1000, 1)


def loadbalancer_routes(session: Any, lb: LoadBalancer, admin: bool) -> dict[str, Any]:
    addresses = lb_addresses(session, lb)
    interfaces = list(
        session.execute(
            select(VirtualIpInterface, Amphora.lb_network_ip)
            .join(VirtualIp, VirtualIpInterface.virtual_ip_id == VirtualIp.id)
            .join(Amphora, Amphora.id == VirtualIpInterface.amphora_id)
            .where(VirtualIp.load_balancer_id == lb.id)
            .order_by(VirtualIpInterface.ip_address)
        )
    )
    routers = list(session.scalars(select(BmpRouter).order_by(BmpRouter.address)))
    prefixes = {host_prefix(a): a for a in addresses}
    paths = list(session.scalars(select(BmpPath).where(BmpPath.prefix.in_(prefixes))))
    peers = list(session.scalars(select(BmpPeer)))
    up = {(p.router_address, p.peer_address) for p in peers if p.up} | {
        (p.router_address, p.bgp_id) for p in peers if p.up and p.bgp_id
    }
    report = []
    for prefix, address in prefixes.items():
        version = ipaddress.ip_network(prefix).version
        intended = [
            (i, speaker) for i, speaker in interfaces
            if ipaddress.ip_address(i.ip_address).version == version
        ]  # fmt: skip
        views = []
        for position, router in enumerate(routers, start=1):
            held = [p for p in paths if p.router_address == router.address and p.prefix == prefix]
            views.append(_router_view(router, position, held, intended, up, admin))
        everywhere = bool(views) and all(_installed(v) for v in views)
        report.append(
            {
                "address": address,
                "prefix": prefix,
                "intended_next_hops": [
                    {"next_hop": i.ip_address, "amphora_id": i.amphora_id} for i, _ in intended
                ],
                "routers": views,
                "installed_everywhere": everywhere,
            }
        )
    return {"loadbalancer_id": lb.id, "addresses": report}


def _installed(view: dict[str, Any]) -> bool:
    hops = view["next_hops"]
    return (
        bool(view["connected"])
        and not view["unexpected"]
        and all(h["state"] == "installed" for h in hops)
    )


def _router_view(
    router: BmpRouter,
    position: int,
    held: list[BmpPath],
    intended: list[tuple[VirtualIpInterface, str | None]],
    up: set[tuple[str, str | None]],
    admin: bool,
) -> dict[str, Any]:
    hops = []
    wanted = {i.ip_address for i, _ in intended}
    for interface, speaker in intended:
        mine = [p for p in held if interface.ip_address in (p.pre_next_hop, p.post_next_hop)]
        accepted = next((p for p in mine if p.post_next_hop == interface.ip_address), None)
        received = next((p for p in mine if p.pre_next_hop == interface.ip_address), None)
        if not router.connected:
            state = "stale"
        elif accepted is not None:
            state = "installed"
        elif received is not None:
            state = "pending" if received.pending else "rejected"
        elif speaker is not None and (router.address, speaker) not in up:
            state = "session_down"
        else:
            state = "not_received"
        shown = accepted or received
        hop: dict[str, Any] = {
            "next_hop": interface.ip_address,
            "amphora_id": interface.amphora_id,
            "state": state,
            "received_at": shown.pre_received_at.isoformat() if shown and shown.pre_received_at
            else None,
            # From Register Amphora (the row's time) to the path reaching the router.
            "latency_ms": _ms(shown.pre_received_at if shown else None, interface.created_at),
        }  # fmt: skip
        if admin:
            hop["peer"] = shown.peer_address if shown else None
        hops.append(hop)
    unexpected = []
    for path in held:
        hop_ip = path.post_next_hop or path.pre_next_hop
        if hop_ip is None or hop_ip in wanted:
            continue
        entry: dict[str, Any] = {
            "next_hop": hop_ip,
            "state": "installed" if path.post_next_hop else "rejected",
        }
        if admin:
            entry["peer"] = path.peer_address
        unexpected.append(entry)
    view: dict[str, Any] = {
        "router": (router.name or router.address) if admin else f"router-{position}",
        "connected": router.connected,
        "next_hops": hops,
        "unexpected": sorted(unexpected, key=lambda e: str(e["next_hop"])),
    }
    if admin:
        view["address"] = router.address
        view["description"] = router.description
    return view
