"""Where the network driver's update_vip and failover_preparation hooks sit in the load
balancer flows (no daemon, no database): update_vip is the last step before ACTIVE of every
change; a failover prepares the old amphora first, right after the task that makes the load
balancer ERROR on revert (a failed preparation never leaves it pending)."""

from __future__ import annotations

from types import SimpleNamespace

from l3dist.controller import flows
from l3dist.distributor.l3_bgp import L3BgpDistributorDriver

from .test_distributor_flow import atom_names


def services() -> SimpleNamespace:
    driver = L3BgpDistributorDriver()
    made = SimpleNamespace(distributor=driver)
    driver.bind(made)  # type: ignore[arg-type]
    return made


def test_every_change_ends_with_update_vip_then_active() -> None:
    s = services()
    for flow in (
        flows.create_load_balancer(s, 3),  # type: ignore[arg-type]
        flows.apply_load_balancer(s, ["a1"], []),  # type: ignore[arg-type]
        flows.scale_load_balancer(s, 1, ["a1"], True, True),  # type: ignore[arg-type]
        flows.failover_amphora(s, ["a1"], True, False),  # type: ignore[arg-type]
    ):
        names = atom_names(flow)
        assert names[-1] == "MarkLoadBalancerActive" and names[-2].endswith("update-vip"), names


def test_a_failover_prepares_the_old_amphora_first() -> None:
    names = atom_names(flows.failover_amphora(services(), ["a1"], True, False))  # type: ignore[arg-type]
    assert names[:3] == ["MarkLoadBalancerErrorOnRevert", "prepare-ids", "prepare-failover"]
    plain = atom_names(flows.scale_load_balancer(services(), 1, ["a1"], True, False))  # type: ignore[arg-type]
    assert "prepare-failover" not in plain, "a scale-in is no failover"
