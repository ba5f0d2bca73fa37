"""The routers' view of l3dist's routes, kept in memory from BMP events (pure logic: no I/O).

Per router: whether its BMP session is up, its BGP peers (up, with ASN and BGP identifier),
and per (peer, prefix) the path before its inbound policy (``pre``, the Adj-RIB-In) and after
it (``post``). ``apply`` returns the keys it changed, so the collector writes only those.

Invariants:
- A router that opens a new BMP session re-sends its whole view (RFC 7854 4.4): what it held
  before is marked stale and dropped by ``sweep`` if the new session has not reported it again
  within ``sync_grace`` seconds; nothing is dropped merely because a session closed (the last
  view is kept, marked disconnected, until the router is back).
- A peer going down drops its paths (the router dropped them too); it stays listed as down
  for ``forget_down_peers`` seconds (an amphora that is gone is not listed for ever). A router
  that sends statistics reports (one per established session, every interval) and has not
  reported on a peer for ``silent_peer`` seconds has lost that session: FRR 8.4 sends no Peer
  Down when it deletes a dynamic (listen-range) neighbour, and withdraws nothing either.
- Unconfirmed post-policy: FRR before 10 reads the post-policy path when it writes the BMP
  message, before its next-hop tracking has validated the new path, so it reports an accepted
  path as a post-policy withdrawal followed by the pre-policy update (FRR issues 13292, 18070).
  A genuine rejection by the router's policy reads the same. Such a path is ``pending`` (its
  router's decision unknown) and its router is listed in ``resync_wanted``: a new BMP session
  (its initial table dump reads validated paths) settles it either way.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from l3dist.routerview.messages import (
    Event,
    PeerDown,
    PeerStats,
    PeerUp,
    Route,
    RouterDown,
    RouterUp,
)

RouterKey = tuple[str]
PeerKey = tuple[str, str]
PathKey = tuple[str, str, str]  # router, peer, prefix


@dataclass
class Path:
    next_hop: str
    as_path: str | None
    received_at: datetime.datetime


@dataclass
class PathState:
    pre: Path | None = None
    post: Path | None = None
    pending: bool = False  # received, the router's post-policy decision not yet known
    stale: bool = False  # from before the router's current BMP session, not re-sent yet

    @property
    def empty(self) -> bool:
        return self.pre is None and self.post is None


@dataclass
class PeerState:
    asn: int | None
    bgp_id: str | None
    since: datetime.datetime  # of its last change (up or down)
    up: bool = True
    stale: bool = False
    reported: datetime.datetime | None = None  # its last statistics report


@dataclass
class RouterState:
    name: str | None = None
    description: str | None = None
    connected: bool = False
    connected_at: datetime.datetime | None = None
    sync_until: datetime.datetime | None = None
    # Its session closed by us for a fresh dump: still shown connected until this time.
    reconnect_by: datetime.datetime | None = None
    peers: dict[str, PeerState] = field(default_factory=dict)
    paths: dict[tuple[str, str], PathState] = field(default_factory=dict)
    last: tuple[str, str, bool, bool] | None = None  # last route event: peer, prefix, post, hop
    reports: datetime.datetime | None = None  # its last statistics report about any peer


@dataclass
class Changes:
    routers: set[str] = field(default_factory=set)
    peers: set[PeerKey] = field(default_factory=set)
    paths: set[PathKey] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.routers or self.peers or self.paths)

    def update(self, other: Changes) -> None:
        self.routers |= other.routers
        self.peers |= other.peers
        self.paths |= other.paths


class RouterView:
    def __init__(
        self, sync_grace: float = 3.0, forget_down_peers: float = 600.0, silent_peer: float = 3.5
    ) -> None:
        self.routers: dict[str, RouterState] = {}
        self.silent_peer = datetime.timedelta(seconds=silent_peer)
        self.sync_grace = datetime.timedelta(seconds=sync_grace)
        self.forget_down_peers = datetime.timedelta(seconds=forget_down_peers)
        self.resync_wanted: set[str] = set()
        # Paths received that the router did not hold before (router, prefix, next hop, when):
        # the collector times them against their registration, then clears the list.
        self.new_paths: list[tuple[str, str, str, datetime.datetime]] = []

    def apply(self, event: Event, now: datetime.datetime) -> Changes:
        changes = Changes()
        router = self.routers.setdefault(event.router, RouterState())
        if isinstance(event, RouterUp):
            self._router_up(event, router, now, changes)
        elif isinstance(event, RouterDown):
            router.last = None
            if router.connected and router.reconnect_by is None:
                router.connected = False
                changes.routers.add(event.router)
        elif isinstance(event, PeerUp):
            router.peers[event.peer] = PeerState(event.asn, event.bgp_id, now)
            changes.peers.add((event.router, event.peer))
        elif isinstance(event, PeerDown):
            self._peer_down(event.router, router, event.peer, now, changes)
        elif isinstance(event, PeerStats):
            router.reports = now
            if (peer := router.peers.get(event.peer)) is not None:
                peer.reported = now
        else:
            self._route(event, router, changes)
        return changes

    def _peer_down(
        self, address: str, router: RouterState, peer: str, now: datetime.datetime,
        changes: Changes,
    ) -> None:  # fmt: skip
        known = router.peers.get(peer)
        router.peers[peer] = PeerState(
            known.asn if known else None, known.bgp_id if known else None, now, up=False
        )
        changes.peers.add((address, peer))
        for key in [k for k in router.paths if k[0] == peer]:
            del router.paths[key]
            changes.paths.add((address, *key))

    def _router_up(
        self, event: RouterUp, router: RouterState, now: datetime.datetime, changes: Changes
    ) -> None:
        if event.name is not None or event.description is not None:
            router.name, router.description = event.name, event.description
            changes.routers.add(event.router)
        if router.connected and router.sync_until is not None and router.reconnect_by is None:
            return  # the Initiation message of a session already opened by log_init
        router.reconnect_by = None
        router.connected, router.connected_at = True, now
        router.sync_until = now + self.sync_grace
        router.last = None
        for peer in router.peers.values():
            peer.stale = True
        for path in router.paths.values():
            path.stale = True
        self.resync_wanted.discard(event.router)
        changes.routers.add(event.router)

    def _route(self, event: Route, router: RouterState, changes: Changes) -> None:
        key = (event.peer, event.prefix)
        state = router.paths.setdefault(key, PathState())
        state.stale = False
        path = Path(event.next_hop, event.as_path, event.arrived) if event.next_hop else None
        if event.post:
            state.post = path
            state.pending = False
        else:
            # FRR's unconfirmed post-policy: its withdrawal came just before this update.
            cold = router.last == (event.peer, event.prefix, True, False)
            if state.pre is None and path is not None:
                self.new_paths.append((event.router, event.prefix, path.next_hop, path.received_at))
            state.pre = path
            state.pending = cold and path is not None and state.post is None
            if state.pending:
                self.resync_wanted.add(event.router)
        router.last = (event.peer, event.prefix, event.post, path is not None)
        if state.empty:
            del router.paths[key]
        changes.paths.add((event.router, event.peer, event.prefix))

    def resyncing(self, address: str, now: datetime.datetime) -> None:
        """We close this router's session for a fresh dump: it is not shown disconnected
        unless it has not reconnected within the sync grace."""
        self.resync_wanted.discard(address)
        if (router := self.routers.get(address)) is not None and router.connected:
            router.reconnect_by = now + self.sync_grace

    def _silent_peers_down(
        self, address: str, router: RouterState, now: datetime.datetime, changes: Changes
    ) -> None:
        """A router that sends statistics reports sends them for every established session:
        a peer it has not reported on for ``silent_peer`` seconds is down (its paths gone)."""
        if not router.connected or router.reports is None:
            return
        if now - router.reports >= self.silent_peer:
            return  # the router stopped reporting altogether: no conclusion about its peers
        for peer, state in list(router.peers.items()):
            last = max(state.since, state.reported or state.since)
            if state.up and now - last >= self.silent_peer:
                self._peer_down(address, router, peer, now, changes)

    def resync_failed(self, address: str) -> None:
        if (router := self.routers.get(address)) is not None:
            router.reconnect_by = None

    def sweep(self, now: datetime.datetime) -> Changes:
        """Drop what a router did not re-send within its sync grace after reconnecting; a
        router asked for a fresh dump that did not reconnect in that time is disconnected."""
        changes = Changes()
        for address, router in self.routers.items():
            for peer in [p for p, s in router.peers.items()
                         if not s.up and now - s.since >= self.forget_down_peers]:  # fmt: skip
                del router.peers[peer]
                changes.peers.add((address, peer))
            self._silent_peers_down(address, router, now, changes)
            if router.reconnect_by is not None and now >= router.reconnect_by:
                router.reconnect_by = None
                router.connected = False
                changes.routers.add(address)
            if router.sync_until is None or now < router.sync_until or not router.connected:
                continue
            router.sync_until = None
            for peer in [p for p, s in router.peers.items() if s.stale]:
                del router.peers[peer]
                changes.peers.add((address, peer))
            for key in [k for k, s in router.paths.items() if s.stale]:
                del router.paths[key]
                changes.paths.add((address, *key))
        return changes

    def paths_by_prefix(self) -> dict[tuple[str, str, str], int]:
        """(router, prefix, policy) -> paths: ``pre`` received, ``post`` accepted,
        ``pending`` received with the router's decision not confirmed."""
        counts: dict[tuple[str, str, str], int] = {}
        for address, router in self.routers.items():
            for (_, prefix), state in router.paths.items():
                for policy, present in (("pre", state.pre), ("post", state.post),
                                        ("pending", state.pending)):  # fmt: skip
                    if present:
                        key = (address, prefix, policy)
                        counts[key] = counts.get(key, 0) + 1
        return counts

    def pending_paths(self) -> int:
        return sum(s.pending for r in self.routers.values() for s in r.paths.values())
