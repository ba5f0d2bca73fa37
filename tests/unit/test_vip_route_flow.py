"""The VIP route flows' shape (no daemon, no database): Register VIP / Unregister VIP between
the task that makes the route ERROR on revert and the one that settles it; new amphorae of a
load balancer (create, scale-out, failover) announce the distributor's VIP routes once their
front end is plugged and before the load balancer is ACTIVE."""

from __future__ import annotations

from l3dist.controller import flows
from l3dist.db import jobs

from .test_distributor_flow import atom_names
from .test_vip_flow import services


def test_create_and_delete_call_the_agents_between_error_and_settled() -> None:
    s = services()
    for flow, steps in (
        (jobs.CREATE_VIP_ROUTE, ["register-vip", "vip-route-active"]),
        # withdrawn everywhere first; then the row and (with the last route) the reservation
        (jobs.DELETE_VIP_ROUTE, ["unregister-vip", "vip-route-delete"]),
    ):
        built = flows.build(s, flow, "r-1", {"plan": {}})  # type: ignore[arg-type]
        assert atom_names(built) == ["vip-route-id", "vip-route-error-on-revert", *steps]


def test_new_amphorae_announce_the_vip_routes_after_their_front_end_is_plugged() -> None:
    s = services()
    for flow, plugged in (
        (flows.create_load_balancer(s, 3), "create-agent-plug-frontend"),  # type: ignore[arg-type]
        (flows.scale_load_balancer(s, 1, [], True, False), "scale-agent-plug-frontend"),  # type: ignore[arg-type]
        (flows.failover_amphora(s, ["a1"], True, True), "scale-agent-plug-frontend"),  # type: ignore[arg-type]
    ):
        names = atom_names(flow)
        announce = [n for n in names if n.startswith("announce-vip-routes")]
        assert len(announce) == 1, names
        assert (
            names.index(plugged) < names.index(announce[0]) < names.index("MarkLoadBalancerActive")
        )
        if "shrink-delete" in names:  # a failover: the old amphora goes after the new announces
            assert names.index(announce[0]) < names.index("shrink-delete")


def test_a_scale_in_announces_nothing_new() -> None:
    names = atom_names(flows.scale_load_balancer(services(), 0, ["a1"], True, True))  # type: ignore[arg-type]
    assert not [n for n in names if n.startswith("announce-vip-routes")]
