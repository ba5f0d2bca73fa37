"""The create flow's shape (no daemon, no database): a fully populated create registers its
amphorae in the same flow, after HAProxy has its configuration and the peers their flow
rescue rules; a plain create waits for a listener; a load balancer with no amphorae left (its
create failed) is repaired by the create flow, not by a scale that has no VIP to plug."""

from __future__ import annotations

from typing import Any

from l3dist.controller import flows
from l3dist.db import jobs

from .test_distributor_flow import atom_names
from .test_vip_flow import services


def _register_steps(names: list[str]) -> list[str]:
    return [n for n in names if n.startswith("register")]


def test_a_populated_create_registers_after_configuring_and_before_active() -> None:
    names = atom_names(flows.create_load_balancer(services(), 3, serving=True))  # type: ignore[arg-type]
    registered = _register_steps(names)
    assert registered, names
    first = names.index(registered[0])
    assert names.index("create-haproxy") < first and names.index("create-rescue") < first
    assert names[-1] == "MarkLoadBalancerActive"


def test_a_plain_create_waits_for_a_listener() -> None:
    names = atom_names(flows.create_load_balancer(services(), 3))  # type: ignore[arg-type]
    assert _register_steps(names) == []


def _plan(amphorae: list[str], add: int, serving: bool) -> dict[str, Any]:
    return {"plan": {"amphorae": amphorae, "serving": serving, "add": add, "remove": [],
                     "drain": True}}  # fmt: skip


def test_scaling_a_load_balancer_with_no_amphorae_is_built_as_a_create() -> None:
    s = services()
    repair = atom_names(flows.build(s, jobs.SCALE_LOAD_BALANCER, "lb", _plan([], 2, True)))  # type: ignore[arg-type]
    assert "AllocateVip" in repair and _register_steps(repair), repair
    grow = atom_names(flows.build(s, jobs.SCALE_LOAD_BALANCER, "lb", _plan(["a1"], 1, True)))  # type: ignore[arg-type]
    assert "AllocateVip" not in grow, "a scale-out keeps the VIP it has"
