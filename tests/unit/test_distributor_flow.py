"""The distributor's flow shape (no daemon, no database): the driver's create subflow between
the task that makes it ERROR on revert and the one that makes it ACTIVE."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from l3dist.controller import flows
from l3dist.db import jobs
from l3dist.distributor.l3_bgp import L3BgpDistributorDriver


def atom_names(flow: Any) -> list[str]:
    names = []
    for item in flow:
        names += atom_names(item) if hasattr(item, "__iter__") else [item.name]
    return names


def test_create_and_update_run_the_driver_check_between_error_and_active() -> None:
    driver = L3BgpDistributorDriver()
    services = SimpleNamespace(distributor=driver)
    driver.bind(services)  # type: ignore[arg-type]
    for flow, steps in (
        # the fabric checked, then (dedicated mode) the distributor amphorae built
        (jobs.CREATE_DISTRIBUTOR, ["check-fabric", "distributor-amphorae"]),
        # a change is checked again, brought to every amphora (one at a time), then
        # (dedicated mode) the distributor amphorae as many as it says
        (jobs.UPDATE_DISTRIBUTOR, ["check-fabric", "roll-speakers", "scale-distributor-amphorae"]),
    ):
        built = flows.build(services, flow, "d-1", {"plan": {}})  # type: ignore[arg-type]
        assert atom_names(built) == [
            "distributor-id",
            "distributor-error-on-revert",
            *steps,
            "distributor-active",
        ]


def test_delete_removes_the_distributor_amphorae_before_the_row() -> None:
    driver = L3BgpDistributorDriver()
    services = SimpleNamespace(distributor=driver)
    driver.bind(services)  # type: ignore[arg-type]
    built = flows.build(services, jobs.DELETE_DISTRIBUTOR, "d-1", {"plan": {}})  # type: ignore[arg-type]
    assert atom_names(built) == [
        "distributor-id",
        "distributor-error-on-revert",
        "nop-d",
        "delete-distributor-amphorae",
        "delete-distributor-row",
    ]


def test_a_distributor_amphora_failover_makes_before_it_breaks() -> None:
    """The replacement is built and announces before the failed one is removed; the
    distributor is ACTIVE only at the end (ERROR on revert)."""
    services = SimpleNamespace(distributor=L3BgpDistributorDriver())
    arguments = {"plan": {}, "amphora_id": "amp-dead"}
    built = flows.build(services, jobs.FAILOVER_DISTRIBUTOR_AMPHORA, "d-1", arguments)  # type: ignore[arg-type]
    assert atom_names(built) == [
        "distributor-id",
        "failed-amphora-id",
        "distributor-error-on-revert",
        "build-replacement",
        "take-over-paths",
        "remove-failed",
        "distributor-active",
    ]
