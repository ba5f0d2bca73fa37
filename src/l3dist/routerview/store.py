"""Writes the router view's changes to the database (``bmp_router``, ``bmp_peer``,
``bmp_path``): for each changed key, its current state or, when it is gone, no row."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select

from l3dist.db.models import (
    BmpPath,
    BmpPeer,
    BmpRouter,
    FloatingIp,
    VirtualIp,
    VirtualIpInterface,
)
from l3dist.routerview.view import Changes, RouterView


def write(session: Any, view: RouterView, changes: Changes, now: datetime.datetime) -> None:
    """Routers first (peers and paths reference them), in one transaction (the caller's)."""
    for address in sorted(changes.routers | {k[0] for k in changes.peers | changes.paths}):
        router = view.routers.get(address)
        if router is None:
            continue
        row = session.get(BmpRouter, address) or BmpRouter(address=address)
        row.name, row.description = router.name, router.description
        row.connected, row.connected_at, row.updated_at = (
            router.connected, router.connected_at, now,
        )  # fmt: skip
        session.add(row)
    session.flush()
    for address, peer in sorted(changes.peers):
        state = view.routers[address].peers.get(peer)
        if state is None:
            session.execute(
                delete(BmpPeer).where(
                    BmpPeer.router_address == address, BmpPeer.peer_address == peer
                )
            )
            continue
        session.merge(
            BmpPeer(
                router_address=address,
                peer_address=peer,
                asn=state.asn,
                bgp_id=state.bgp_id,
                since=state.since,
                up=state.up,
            )
        )
    for address, peer, prefix in sorted(changes.paths):
        path = view.routers[address].paths.get((peer, prefix))
        if path is None:
            session.execute(
                delete(BmpPath).where(
                    BmpPath.router_address == address,
                    BmpPath.peer_address == peer,
                    BmpPath.prefix == prefix,
                )
            )
            continue
        shown = path.post or path.pre
        session.merge(
            BmpPath(
                router_address=address,
                peer_address=peer,
                prefix=prefix,
                pre_next_hop=path.pre.next_hop if path.pre else None,
                post_next_hop=path.post.next_hop if path.post else None,
                pending=path.pending,
                as_path=shown.as_path if shown else None,
                pre_received_at=path.pre.received_at if path.pre else None,
                post_received_at=path.post.received_at if path.post else None,
            )
        )


def registered_at(session: Any, prefix: str, next_hop: str) -> datetime.datetime | None:
    """When the amphora with this front-end IP was registered behind the address (its VIP
    or a floating IP on its virtual-ip): the virtual-ip interface's creation."""
    address = prefix.split("/", 1)[0]
    floating = select(FloatingIp.virtual_ip_id).where(FloatingIp.floating_ip_address == address)
    found: datetime.datetime | None = session.scalar(
        select(func.max(VirtualIpInterface.created_at))
        .join(VirtualIp, VirtualIpInterface.virtual_ip_id == VirtualIp.id)
        .where(
            VirtualIpInterface.ip_address == next_hop,
            or_(VirtualIp.vip_address == address, VirtualIp.id.in_(floating)),
        )
    )
    return found


def intended_next_hops(session: Any) -> list[tuple[str, int]]:
    """(address, registered next hops) for every VIP and floating IP with amphorae behind it."""
    per_vip = (
        select(VirtualIp.id, VirtualIp.vip_address, func.count(VirtualIpInterface.amphora_id))
        .join(VirtualIpInterface, VirtualIpInterface.virtual_ip_id == VirtualIp.id)
        .group_by(VirtualIp.id, VirtualIp.vip_address)
    )
    counts = {vip_id: (address, int(n)) for vip_id, address, n in session.execute(per_vip)}
    found = [(address, n) for address, n in counts.values() if address]
    floating = select(FloatingIp.virtual_ip_id, FloatingIp.floating_ip_address).where(
        FloatingIp.virtual_ip_id.in_(list(counts))
    )
    for vip_id, address in session.execute(floating):
        found.append((str(address), counts[vip_id][1]))
    return sorted(found)


def forget_all(session: Any) -> None:
    """A collector starting has no view yet: every router's rows are from an older run (their
    routers reconnect and re-send everything)."""
    session.execute(delete(BmpPath))
    session.execute(delete(BmpPeer))
    session.execute(delete(BmpRouter))
