"""The router view's pure logic: pmbmpd's message log (lines as pmacct 1.7.7 wrote them for
FRR 8.4.4 in the lab, ``bmp/``) applied to ``RouterView``, and the per-router report."""

from __future__ import annotations

import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from l3dist.db.router_view import _router_view
from l3dist.routerview import messages
from l3dist.routerview.messages import PeerDown, Route, RouterDown, RouterUp
from l3dist.routerview.view import RouterView

LOG = Path(__file__).with_name("bmp") / "frr-8.4-cold-next-hop.jsonl"
ROUTER, VIP = "198.18.0.1", "198.18.100.10/32"
T0 = datetime.datetime(2026, 12, 3, 13, 43)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def replay(view: RouterView, lines: list[str], now: datetime.datetime = T0) -> None:
    for line in lines:
        if (event := messages.parse(line)) is not None:
            view.apply(event, now)


def route(peer: str, post: bool, hop: str | None) -> Route:
    return Route(ROUTER, peer, VIP, post, hop, "65000 64512", T0)


def test_the_recorded_log_parses_to_the_router_its_peers_and_paths() -> None:
    events = [messages.parse(line) for line in LOG.read_text().splitlines()]
    assert events[0] == RouterUp(ROUTER)
    assert events[1] == RouterUp(ROUTER, "vm", "FRRouting 8.4.4")
    assert [e.peer for e in events if isinstance(e, messages.PeerUp)] == [
        "198.18.0.21", "198.18.0.22"
    ]  # fmt: skip
    first = events[4]
    assert isinstance(first, Route)
    assert (first.post, first.next_hop, first.prefix) == (True, None, VIP)


def test_an_unconfirmed_post_policy_path_is_pending_and_its_router_resynced() -> None:
    """FRR 8.4 with a next hop it has not validated yet: post-policy withdrawal, then the
    pre-policy update. The warm next hop (.22) is reported right: installed at once."""
    view = RouterView()
    replay(view, LOG.read_text().splitlines())
    paths = view.routers[ROUTER].paths
    cold, warm = paths[("198.18.0.21", VIP)], paths[("198.18.0.22", VIP)]
    assert (cold.pending, cold.post, cold.pre and cold.pre.next_hop) == (
        True, None, "198.18.1.100"
    )  # fmt: skip
    assert (warm.pending, warm.post and warm.post.next_hop) == (False, "198.18.1.101")
    assert view.resync_wanted == {ROUTER}
    # The fresh dump (a new session) reads validated paths: accepted after all.
    view.resyncing(ROUTER, at(1))
    view.apply(RouterDown(ROUTER), at(1))
    assert view.routers[ROUTER].connected  # closed by us: not shown disconnected
    view.apply(RouterUp(ROUTER), at(1.2))
    view.apply(route("198.18.0.21", True, "198.18.1.100"), at(1.2))
    view.apply(route("198.18.0.21", False, "198.18.1.100"), at(1.2))
    assert not paths[("198.18.0.21", VIP)].pending
    assert paths[("198.18.0.21", VIP)].post is not None
    assert view.resync_wanted == set()


def test_a_dump_with_only_the_pre_policy_path_is_a_rejection() -> None:
    view = RouterView()
    replay(view, LOG.read_text().splitlines())
    view.apply(RouterDown(ROUTER), at(1))
    view.apply(RouterUp(ROUTER), at(1.2))
    view.apply(route("198.18.0.21", False, "198.18.1.100"), at(1.2))
    state = view.routers[ROUTER].paths[("198.18.0.21", VIP)]
    assert (state.pending, state.post, state.pre is not None) == (False, None, True)


def test_a_new_session_drops_what_the_router_did_not_send_again() -> None:
    view = RouterView(sync_grace=3)
    replay(view, LOG.read_text().splitlines())
    view.apply(RouterDown(ROUTER), at(5))
    assert not view.routers[ROUTER].connected
    assert len(view.routers[ROUTER].paths) == 2  # the last view is kept while it is down
    view.apply(RouterUp(ROUTER), at(10))
    view.apply(route("198.18.0.22", True, "198.18.1.101"), at(10.1))
    assert not view.sweep(at(12))  # within the grace: nothing dropped yet
    changes = view.sweep(at(13.1))
    assert (ROUTER, "198.18.0.21", VIP) in changes.paths
    assert list(view.routers[ROUTER].paths) == [("198.18.0.22", VIP)]
    assert set(view.routers[ROUTER].peers) == set()  # no Peer Up in the new session


def test_a_router_that_does_not_come_back_after_a_resync_is_disconnected() -> None:
    view = RouterView(sync_grace=3)
    replay(view, LOG.read_text().splitlines())
    view.resyncing(ROUTER, at(1))
    view.apply(RouterDown(ROUTER), at(1))
    assert view.routers[ROUTER].connected
    assert ROUTER in view.sweep(at(4.5)).routers
    assert not view.routers[ROUTER].connected


def test_a_peer_down_drops_its_paths() -> None:
    view = RouterView()
    replay(view, LOG.read_text().splitlines())
    changes = view.apply(PeerDown(ROUTER, "198.18.0.22"), at(1))
    assert (ROUTER, "198.18.0.22", VIP) in changes.paths
    assert list(view.routers[ROUTER].paths) == [("198.18.0.21", VIP)]


MALFORMED = ["not json", '{"bmp_router": "no-address"}',
             '{"bmp_router": "198.18.0.1", "bmp_msg_type": "peer_up"}']  # fmt: skip


@pytest.mark.parametrize("line", MALFORMED)
def test_a_malformed_line_is_refused(line: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        messages.parse(line)


def _report(connected: bool, held: list[Any], up: set[tuple[str, str | None]]) -> dict[str, str]:
    router = SimpleNamespace(address=ROUTER, name="tor", description="", connected=connected)
    intended = [
        (SimpleNamespace(ip_address=f"198.18.1.10{i}", amphora_id=f"a{i}", created_at=T0),
         f"198.18.0.2{i}")
        for i in range(4)
    ]  # fmt: skip
    view = _router_view(router, 1, held, intended, up, admin=True)  # type: ignore[arg-type]
    states = {h["next_hop"]: h["state"] for h in view["next_hops"]}
    states.update({u["next_hop"]: "unexpected " + u["state"] for u in view["unexpected"]})
    return states


def _path(peer: str, pre: str | None, post: str | None, pending: bool = False) -> Any:
    return SimpleNamespace(peer_address=peer, pre_next_hop=pre, post_next_hop=post,
                           pending=pending, pre_received_at=at(0.1))  # fmt: skip


def test_each_intended_next_hop_gets_the_state_the_router_holds() -> None:
    held = [
        _path("198.18.0.20", "198.18.1.100", "198.18.1.100"),
        _path("198.18.0.21", "198.18.1.101", None, pending=True),
        _path("198.18.0.22", "198.18.1.102", None),
        _path("198.18.0.29", "198.18.1.199", "198.18.1.199"),
    ]
    up = {(ROUTER, "198.18.0.20"), (ROUTER, "198.18.0.21"), (ROUTER, "198.18.0.22")}
    assert _report(True, held, up) == {
        "198.18.1.100": "installed",
        "198.18.1.101": "pending",
        "198.18.1.102": "rejected",
        "198.18.1.103": "session_down",  # its speaker (198.18.0.23) has no session there
        "198.18.1.199": "unexpected installed",
    }
    assert _report(True, [], up | {(ROUTER, "198.18.0.23")})["198.18.1.103"] == "not_received"
    assert set(_report(False, held, up).values()) == {"stale", "unexpected installed"}


def test_a_peer_the_router_stops_reporting_on_is_down_with_its_paths() -> None:
    """FRR 8.4 deletes a dynamic neighbour (BFD down) without Peer Down or withdrawals; its
    statistics reports, sent every second for each established session, stop."""
    view = RouterView(silent_peer=3.5)
    replay(view, LOG.read_text().splitlines(), T0)
    for second in range(1, 8):
        view.apply(messages.PeerStats(ROUTER, "198.18.0.22"), at(second))
        if second <= 2:
            view.apply(messages.PeerStats(ROUTER, "198.18.0.21"), at(second))
        view.sweep(at(second))
    peers = view.routers[ROUTER].peers
    assert (peers["198.18.0.21"].up, peers["198.18.0.22"].up) == (False, True)
    assert list(view.routers[ROUTER].paths) == [("198.18.0.22", VIP)]


def test_a_router_that_stops_reporting_altogether_keeps_its_peers() -> None:
    view = RouterView(silent_peer=3.5)
    replay(view, LOG.read_text().splitlines(), T0)
    view.apply(messages.PeerStats(ROUTER, "198.18.0.21"), at(1))
    view.sweep(at(30))
    assert all(p.up for p in view.routers[ROUTER].peers.values())
