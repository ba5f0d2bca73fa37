"""Pure logic: which paths a speaker sends with and without ADD-PATH."""

from __future__ import annotations

from l3dist.bgp import paths
from l3dist.bgp.base import Route

VIP = "198.18.100.10/32"
HOPS = ("198.18.1.11", "198.18.1.12", "198.18.1.13")
ROUTES = frozenset(Route(VIP, nh, "p1") for nh in HOPS)


def test_with_add_path_every_next_hop_is_a_path_with_a_stable_id() -> None:
    ids = paths.PathIds()
    sent = paths.to_send(ROUTES, {"p1"}, "198.18.0.21", ids)
    assert sorted(sent.values()) == list(HOPS)
    assert sorted(pid for _, _, pid in sent) == [1, 2, 3]
    # One next hop goes: the others keep their ids; a new one takes the free id.
    fewer = frozenset(r for r in ROUTES if r.nexthop != "198.18.1.12")
    again = paths.to_send(fewer, {"p1"}, "198.18.0.21", ids)
    assert {nh: pid for (_, _, pid), nh in again.items()} == {
        nh: pid for (_, _, pid), nh in sent.items() if nh != "198.18.1.12"
    }
    ids.keep_only(fewer)
    more = fewer | {Route(VIP, "198.18.1.14", "p1")}
    freed = next(pid for (_, _, pid), nh in sent.items() if nh == "198.18.1.12")
    assert paths.to_send(more, {"p1"}, "198.18.0.21", ids)[("p1", VIP, freed)] == "198.18.1.14"


def test_without_add_path_one_next_hop_per_prefix_spread_by_router_id() -> None:
    ids = paths.PathIds()
    choices = set()
    for router_id in (f"198.18.0.{n}" for n in range(20, 40)):
        sent = paths.to_send(ROUTES, set(), router_id, ids)
        assert list(sent) == [("p1", VIP, None)]
        choices.add(sent[("p1", VIP, None)])
    assert choices == set(HOPS)  # different distributors pick different next hops
    # A speaker keeps its choice while it stays; the others' going changes nothing.
    chosen = paths.preferred("198.18.0.21", VIP, HOPS)
    other = next(nh for nh in HOPS if nh != chosen)
    assert paths.preferred("198.18.0.21", VIP, [h for h in HOPS if h != other]) == chosen


def test_changes_replace_without_withdrawing_and_withdraw_what_is_gone() -> None:
    current: paths.Sent = {("p1", VIP, None): "198.18.1.11", ("p1", "198.18.100.11/32", 1): "x"}
    wanted: paths.Sent = {("p1", VIP, None): "198.18.1.12"}
    withdraw, announce = paths.changes(current, wanted)
    assert withdraw == [("p1", "198.18.100.11/32", 1, "x")]
    assert announce == [("p1", VIP, None, "198.18.1.12")]  # an announce replaces, no gap
    assert paths.changes(wanted, wanted) == ([], [])
