"""End-to-end fixtures: the lab fabric with two member servers, and the controller (API and
worker processes, started by the ``l3dist`` command) on a fresh SQLite or PostgreSQL database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from l3dist.bgp.base import host_prefix
from l3dist.lab import fabric, member
from l3dist.lab.config import LabConfig
from l3dist.lab.controlplane import ADMIN, ControlPlane, ControlPlaneError, environment
from l3dist.network.catalog import stable_id
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
    """The lab's BGP peer profiles (the ToR), one speaker per IP version, an L3_BGP distributor."""
    cfg = LabConfig()
    speakers = []
    for version in (4, 6):
        peer = controller.call(
            "POST",
            "/v2/lbaas/bgppeers",
            {
                "bgp_peer": {
                    "name": f"tor-v{version}",
                    "peer_ip": cfg.mgmt.gateway(version),
                    "remote_as": cfg.tor_asn,
                    "ttl_hops": 1,
                    "hold_time": cfg.hold_time,
                    "keepalive_interval": cfg.keepalive,
                }
            },
            expect=201,
        )["bgp_peer"]
        speaker = controller.call(
            "POST",
            "/v2/lbaas/bgpspeakers",
            {
                "bgp_speaker": {
                    "name": f"amphora-v{version}",
                    "ip_version": version,
                    "local_as": cfg.amphora_asn,
                }
            },
            expect=201,
        )["bgp_speaker"]
        controller.call(
            "PUT",
            f"/v2/lbaas/bgpspeakers/{speaker['id']}/add_bgp_peer",
            {"bgp_peer_id": peer["id"]},
        )
        speakers.append(speaker["id"])
    return dict(
        controller.call(
            "POST",
            "/v2/lbaas/distributors",
            {
                "distributor": {
                    "name": "fabric",
                    "distributor_type": "L3_BGP",
                    "config_data": {"bgp_speaker_ids": speakers},
                }
            },
            expect=201,
        )["distributor"]
    )


ANYCAST_V4 = stable_id("anycast-net-v4")
FRONTEND_V4 = stable_id("frontend-net-v4")


def amphorae_of(ctl: Controller, lb_id: str) -> list[dict[str, Any]]:
    rows = ctl.call("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb_id}")["amphorae"]
    return [a for a in rows if a["status"] == "ALLOCATED"]


def lb_path(lb: dict[str, Any]) -> str:
    return f"/v2/lbaas/loadbalancers/{lb['id']}"


def create_web_lb(ctl: Controller, distributor: dict[str, Any], count: int) -> dict[str, Any]:
    """An ACTIVE_ACTIVE load balancer with `count` amphorae, an HTTP listener on port 80 and a
    round-robin pool of the lab's member servers, each step waited for (ACTIVE)."""
    lb = ctl.call(
        "POST",
        "/v2/lbaas/loadbalancers",
        {
            "loadbalancer": {
                "name": "web",
                "vip_subnet_id": ANYCAST_V4,
                "frontend_subnet_id": FRONTEND_V4,
                "topology": "ACTIVE_ACTIVE",
                "amphora_count": count,
                "distributor_id": distributor["id"],
            }
        },
        expect=201,
    )["loadbalancer"]
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    return add_web_service(ctl, lb)


def add_web_service(ctl: Controller, lb: dict[str, Any]) -> dict[str, Any]:
    """An HTTP listener on port 80 with a round-robin pool of the lab's member servers."""
    listener = ctl.call(
        "POST",
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
        expect=201,
    )["listener"]
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    pool = ctl.call(
        "POST",
        "/v2/lbaas/pools",
        {
            "pool": {
                "listener_id": listener["id"],
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
        expect=201,
    )["pool"]
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    for m in ctl.members:
        ctl.call(
            "POST",
            f"/v2/lbaas/pools/{pool['id']}/members",
            {"member": {"address": m.ip4, "protocol_port": m.port}},
            expect=201,
        )
        ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    return {**lb, "listener": listener, "pool": pool}


def wait_for_ecmp(ctl: Controller, lb: dict[str, Any], count: int) -> set[str]:
    """Until the ToR's FIB route for the VIP has exactly the front-end IPs of the load balancer's
    `count` amphorae as next hops; returns them."""
    prefix = host_prefix(lb["vip_address"])

    def converged() -> bool:
        ips = {a["frontend_ip"] for a in amphorae_of(ctl, lb["id"])}
        return len(ips) == count and set(fabric.fib_nexthops(prefix)) == ips

    wait_until(converged, 30, f"{count} next hops for {prefix}")
    return set(fabric.fib_nexthops(prefix))


def delete_lb(ctl: Controller, lb: dict[str, Any]) -> None:
    ctl.call("DELETE", f"{lb_path(lb)}?cascade=true", expect=204)
    wait_until(lambda: ctl.http.get(lb_path(lb), headers=ADMIN).status_code == 404, 60, "LB gone")
