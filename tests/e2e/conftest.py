"""End-to-end fixtures: the lab fabric with two member servers, and the controller (API, worker
and health manager processes, started by the ``l3dist`` command with a production
configuration: ``static`` network and ``hosts`` compute drivers) on a fresh SQLite or
PostgreSQL database, on an operator's site: its networks defined through the admin API, the
fabric's distributor, and HOSTS lab hosts enrolled and running ``l3dist-agent run``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from l3dist_lab import fabric, hosts, member, scenario, site
from l3dist_lab.config import LabConfig
from l3dist_lab.controlplane import (
    ControlPlane,
    ControlPlaneError,
    controller_config,
    environment,
    management_address,
)
from tests.conftest import database_url

# Enough for every test of a module: 3 amphorae, a 4th (scale-out, the replacement of a
# failover) while the 3 still run, and a spare.
HOSTS = 5


def wait_until(check: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        time.sleep(0.1)


class Controller(ControlPlane):
    """The control plane with the lab's member servers and the site; a wrong status fails the
    test."""

    members: list[member.LabMember]
    site: site.Site

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


def controller_on(*kinds: str) -> Any:
    """The module-scoped ``controller`` fixture on a fresh database of each kind given. This
    process keeps the lab's own records (its member servers) in a database of the lab's."""

    @pytest.fixture(name="controller", scope="module", params=list(kinds))
    def controller(
        lab_prerequisites: None,
        tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest,
    ) -> Iterator[Controller]:
        work = tmp_path_factory.mktemp("controller")
        with database_url(request.param, work) as url:
            yield from controller_on_site(url, work)

    return controller


# By default on both (the worker's flows, job queue and taskflow persistence run on SQLite
# and on PostgreSQL); a module that proves no more on the second says which one it runs on.
controller = controller_on("sqlite", "postgresql")


def controller_on_site(
    url: str, work: Path, settings: dict[str, dict[str, Any]] | None = None, **env: str
) -> Iterator[Controller]:
    """The lab up, the controller on the database url started (settings: configuration
    sections added to the site's; env: extra variables for its processes) and the site
    built; all of it gone at the end."""
    cfg = LabConfig()
    state = work / "control"
    state.mkdir(parents=True, exist_ok=True)
    ctl = Controller(state, url, cfg, api_host=management_address(cfg))
    ctl.config_path.write_text(controller_config(cfg, **(settings or {})))
    ctl.env.update(env)
    lab_db = f"sqlite:///{work / 'lab.db'}"
    with environment(L3DIST_DATABASE_URL=lab_db, L3DIST_CA_DIR=ctl.env["L3DIST_CA_DIR"]):
        fabric.down()
        fabric.up(cfg)
        try:
            ctl.members = [member.add("m1"), member.add("m2")]
            ctl.start()
            ctl.site = site.build(ctl, HOSTS, cfg)
            yield ctl
        finally:
            ctl.stop()
            for host in hosts.list_hosts():
                hosts.delete(host)
            fabric.down()


@pytest.fixture(scope="module")
def distributor(controller: Controller) -> dict[str, Any]:
    return controller.site.distributor


def create_web_lb(
    ctl: Controller, distributor: dict[str, Any], count: int, ip_version: int = 4
) -> dict[str, Any]:
    """An ACTIVE_ACTIVE load balancer with `count` amphorae (VIP and front end of ip_version), an
    HTTP listener on port 80 and a round-robin pool of the lab's member servers, each step
    waited for (ACTIVE)."""
    lb = scenario.create_lb(ctl, distributor["id"], count, ip_version, subnets=ctl.site.subnets)
    return add_web_service(ctl, lb)


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
