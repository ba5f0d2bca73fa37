"""Which paths a speaker sends: every next hop of a VIP (ADD-PATH) or one (without it).

Pure logic, shared by the drivers. A route names a VIP prefix, a next hop and a peer; a
speaker with ADD-PATH negotiated with a peer sends each of a prefix's next hops as its own path
(RFC 7911, each with a path id); to a peer without it, one next hop per prefix (the spec's
model). Which one is chosen by rendezvous hashing on the speaker's router id, so that several
distributors without ADD-PATH tend to announce different next hops (the spec's "one
distributor per ECMP member") while each keeps its choice as long as that next hop stays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from l3dist.bgp.base import Route

# (peer_id, prefix, path id or None) -> next hop: what a speaker sends. Without ADD-PATH the
# path id is None, so a prefix has one entry per peer and a new choice replaces the old one.
Sent = dict[tuple[str, str, int | None], str]


def preferred(router_id: str, prefix: str, nexthops: Iterable[str]) -> str:
    """The next hop this speaker announces for prefix when it can announce only one."""
    return min(
        nexthops,
        key=lambda nh: hashlib.sha256(f"{router_id}|{prefix}|{nh}".encode()).digest(),
    )


class PathIds:
    """Stable ADD-PATH path ids: a (peer, prefix, next hop) keeps its id while announced, the
    smallest free one of its prefix (ids are per prefix and peer in RFC 7911)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], dict[str, int]] = {}

    def get(self, peer_id: str, prefix: str, nexthop: str) -> int:
        ids = self._ids.setdefault((peer_id, prefix), {})
        if nexthop not in ids:
            taken = set(ids.values())
            ids[nexthop] = next(i for i in range(1, len(taken) + 2) if i not in taken)
        return ids[nexthop]

    def keep_only(self, routes: Iterable[Route]) -> None:
        """Forget the ids of routes no longer announced."""
        wanted: dict[tuple[str, str], set[str]] = {}
        for route in routes:
            wanted.setdefault((route.peer_id, route.prefix), set()).add(route.nexthop)
        for key in list(self._ids):
            kept = {nh: i for nh, i in self._ids[key].items() if nh in wanted.get(key, set())}
            if kept:
                self._ids[key] = kept
            else:
                del self._ids[key]


def to_send(
    routes: frozenset[Route],
    add_path_peers: set[str],
    router_id: str,
    path_ids: PathIds,
) -> Sent:
    """What to send for routes: every path to the peers in add_path_peers, else one next hop
    per prefix."""
    by_key: dict[tuple[str, str], set[str]] = {}
    for route in routes:
        by_key.setdefault((route.peer_id, route.prefix), set()).add(route.nexthop)
    sent: Sent = {}
    for (peer_id, prefix), nexthops in by_key.items():
        if peer_id in add_path_peers:
            for nexthop in nexthops:
                sent[(peer_id, prefix, path_ids.get(peer_id, prefix, nexthop))] = nexthop
        else:
            sent[(peer_id, prefix, None)] = preferred(router_id, prefix, nexthops)
    return sent


def changes(
    current: Sent, wanted: Sent
) -> tuple[list[tuple[str, str, int | None, str]], list[tuple[str, str, int | None, str]]]:
    """(withdrawals, announcements) that turn current into wanted: a key gone is withdrawn,
    a key new or with another next hop announced (an announce replaces its key's path)."""
    withdraw = [(*key, nh) for key, nh in sorted(current.items(), key=_order) if key not in wanted]
    announce = [
        (*key, nh) for key, nh in sorted(wanted.items(), key=_order) if current.get(key) != nh
    ]
    return withdraw, announce


def _order(item: tuple[tuple[str, str, int | None], str]) -> tuple[str, str, int, str]:
    (peer_id, prefix, path_id), nexthop = item
    return peer_id, prefix, path_id or 0, nexthop
