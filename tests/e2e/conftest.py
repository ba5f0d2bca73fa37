"""End-to-end fixtures: the lab fabric with two member servers, and the controller (API and
worker processes, started by the ``l3dist`` command) on a fresh SQLite or PostgreSQL database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from l3dist_lab import fabric, member, scenario
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import ControlPlane, ControlPlaneError, environment
from tests.conftest import database_url


def wait_until(check: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        time.sleep(0.1)


class Controller(ControlPlane):
    """The control plane with the lab's member servers; a wrong status fails the test."""

    members: list[member.LabMember]

    def call(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().call(*args, **kwargs)
        except ControlPlaneError as exc:
            raise AssertionError(str(exc)) from None

    def wait_for(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return super().wait_for(*args, **kwargs)
        except ControlPlaneError as exc:
            raise AssertionError(str(exc)) from None


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def controller(
    lab_prerequisites: None,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Controller]:
    """API and worker on a fresh database of each kind (the worker's flows, job queue and
    taskflow persistence run on SQLite and on PostgreSQL)."""
    work = tmp_path_factory.mktemp("controller")
    with (
        database_url(request.param, work) as url,
        environment(L3DIST_DATABASE_URL=url, L3DIST_CA_DIR=str(work / "ca")),
    ):
        yield from _controller(url, work)


def _controller(url: str, work: Path) -> Iterator[Controller]:
    fabric.down()
    fabric.up(LabConfig())
    ctl = Controller(work, url)
    try:
        ctl.members = [member.add("m1"), member.add("m2")]
        ctl.start()
        yield ctl
    finally:
        ctl.stop()
        fabric.down()


@pytest.fixture(scope="module")
def distributor(controller: Controller) -> dict[str, Any]:
    return scenario.lab_distributor(controller)


def create_web_lb(
    ctl: Controller, distributor: dict[str, Any], count: int, ip_version: int = 4
) -> dict[str, Any]:
    """An ACTIVE_ACTIVE load balancer with `count` amphorae (VIP and front end of ip_version), an
    HTTP listener on port 80 and a round-robin pool of the lab's member servers, each step
    waited for (ACTIVE)."""
    return add_web_service(ctl, scenario.create_lb(ctl, distributor["id"], count, ip_version))


def add_web_service(ctl: Controller, lb: dict[str, Any]) -> dict[str, Any]:
    return scenario.add_web_service(ctl, lb, ctl.members)


def wait_for_ecmp(ctl: Controller, lb: dict[str, Any], count: int) -> set[str]:
    try:
        return scenario.wait_for_ecmp(ctl, lb, count)
    except ControlPlaneError as exc:
        raise AssertionError(str(exc)) from None


amphorae_of = scenario.amphorae_of
lb_path = scenario.lb_path
delete_lb = scenario.delete_lb
ANYCAST_V4 = scenario.ANYCAST_V4
FRONTEND_V4 = scenario.FRONTEND_V4
