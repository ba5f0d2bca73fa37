"""The router's own view, over BMP: the lab's ToR (FRR, ``bgpd -M bmp``) streams BMP to the
controller's ``l3dist routerview`` (pmacct's pmbmpd), and ``GET .../loadbalancers/{id}/routes``
compares what the ToR holds with the next hops l3dist intends. Checked against the ToR's own
kernel FIB: 3 amphorae are 3 installed next hops; a next hop the ToR's import filter refuses
is "rejected" at the router; a withdrawn path leaves the view within 1 s of leaving the FIB;
after the router crashed and came back, its view is rebuilt."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from l3dist.bgp.base import host_prefix
from l3dist.db.models import BmpPath
from l3dist_lab import fabric
from l3dist_lab.config import LabConfig
from l3dist_lab.fib import FibWatcher
from tests.e2e.conftest import (
    Controller,
    amphorae_of,
    controller_on,
    create_web_lb,
    lb_path,
    wait_for_ecmp,
    wait_until,
)

# SQLite only: the router view's rows are written the same on both databases.
controller = controller_on("sqlite")


def routes(ctl: Controller, lb: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    path = f"{lb_path(lb)}/routes"
    return ctl.call("GET", path, **({"headers": headers} if headers else {}))["routes"]


def states(ctl: Controller, lb: dict[str, Any]) -> dict[str, str]:
    """The VIP's next hops at the (only) router, with their states; unexpected ones too."""
    (address,) = [a for a in routes(ctl, lb)["addresses"] if a["address"] == lb["vip_address"]]
    if len(address["routers"]) != 1:
        return {}
    (router,) = address["routers"]
    found = {h["next_hop"]: h["state"] for h in router["next_hops"]}
    found.update({u["next_hop"]: f"unexpected {u['state']}" for u in router["unexpected"]})
    return found


@pytest.fixture(scope="module")
def web_lb(controller: Controller, distributor: dict[str, Any]) -> dict[str, Any]:
    lb = create_web_lb(controller, distributor, 3)
    wait_for_ecmp(controller, lb, 3)
    return lb


def all_installed(ctl: Controller, lb: dict[str, Any]) -> dict[str, str]:
    hops = {a["frontend_ip"] for a in amphorae_of(ctl, lb["id"])}
    wanted = dict.fromkeys(hops, "installed")
    wait_until(lambda: states(ctl, lb) == wanted, 15, f"{sorted(hops)} installed at the router")
    return wanted


def test_three_amphorae_are_three_installed_next_hops(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    ctl, lb = controller, web_lb
    installed = all_installed(ctl, lb)
    prefix = host_prefix(lb["vip_address"])
    assert set(fabric.fib_nexthops(prefix)) == set(installed)  # the router's own FIB agrees
    report = routes(ctl, lb)
    (vip,) = [a for a in report["addresses"] if a["address"] == lb["vip_address"]]
    (router,) = vip["routers"]
    assert vip["installed_everywhere"] is True
    # Admins see the router (its BMP address: the ToR's on lb-mgmt-net) and the peers: the
    # amphorae's management addresses.
    assert router["address"] == str(LabConfig().mgmt.gateway(4))
    speakers = {a["lb_network_ip"] for a in amphorae_of(ctl, lb["id"])}
    assert {h["peer"] for h in router["next_hops"]} == speakers
    assert all(h["latency_ms"] is not None and h["latency_ms"] >= 0 for h in router["next_hops"])
    # The rows the collector wrote: one path per amphora, accepted by the router.
    engine = create_engine(ctl.database_url)
    with Session(engine) as session:
        rows = session.scalars(select(BmpPath).where(BmpPath.prefix == prefix)).all()
        assert {(r.peer_address, r.post_next_hop) for r in rows} == {
            (a["lb_network_ip"], a["frontend_ip"]) for a in amphorae_of(ctl, lb["id"])
        }
    engine.dispose()


def test_a_tenant_sees_its_own_view_without_router_names(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    ctl, lb = controller, web_lb
    owner = {"X-Project-Id": lb["project_id"], "X-Roles": "member"}
    (vip,) = [a for a in routes(ctl, lb, owner)["addresses"] if a["address"] == lb["vip_address"]]
    (router,) = vip["routers"]
    assert router["router"] == "router-1"
    assert "address" not in router and all("peer" not in h for h in router["next_hops"])
    other = {"X-Project-Id": "someone-else", "X-Roles": "member"}
    ctl.call("GET", f"{lb_path(lb)}/routes", headers=other, expect=404)


def test_a_next_hop_the_router_refuses_is_rejected_at_the_router(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    ctl, lb = controller, web_lb
    installed = all_installed(ctl, lb)
    refused = sorted(installed)[0]
    prefix = host_prefix(lb["vip_address"])
    fabric.reject_next_hop(refused)
    try:
        wanted = {**installed, refused: "rejected"}
        wait_until(lambda: states(ctl, lb) == wanted, 15, f"{refused} rejected")
        assert refused not in fabric.fib_nexthops(prefix)  # the router's FIB agrees
    finally:
        fabric.reject_next_hop(None)
    all_installed(ctl, lb)
    assert set(fabric.fib_nexthops(prefix)) == set(installed)


def test_after_a_router_crash_its_view_is_rebuilt(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    ctl, lb = controller, web_lb
    installed = all_installed(ctl, lb)
    fabric.crash_router()
    # The router's BMP session is gone with it: its last view is kept, shown as stale.
    wait_until(lambda: set(states(ctl, lb).values()) == {"stale"}, 10, "the view stale")
    fabric.start_router()
    wait_for_ecmp(ctl, lb, 3)  # the amphorae's sessions came back, with no call to l3dist
    assert all_installed(ctl, lb) == installed


def test_a_withdrawn_path_leaves_the_view_within_a_second_of_the_fib(
    controller: Controller, web_lb: dict[str, Any], record_property: Any
) -> None:
    ctl, lb = controller, web_lb
    all_installed(ctl, lb)
    prefix = host_prefix(lb["vip_address"])
    with FibWatcher() as fib:
        since = time.perf_counter()
        ctl.call("PUT", lb_path(lb), {"loadbalancer": {"amphora_count": 2}})
        left = fib.wait_for(prefix, lambda hops: len(hops) == 2, since, timeout=30)
        remaining = fib.nexthops(prefix)
    gone = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        now = states(ctl, lb)
        if {hop for hop, state in now.items() if state == "installed"} == set(remaining):
            gone = time.perf_counter()
            break
        time.sleep(0.05)
    assert gone is not None, f"the view still shows {states(ctl, lb)}"
    record_property("view_after_fib_s", round(gone - left, 3))
    print(f"the view followed the FIB after {gone - left:.3f} s")
    assert gone - left <= 1.0, f"the view followed the FIB after {gone - left:.2f} s"
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    wait_for_ecmp(ctl, lb, 2)
    assert all_installed(ctl, lb) == dict.fromkeys(remaining, "installed")


def _pmbmpd_in(workdir: Path) -> list[int]:
    """pmbmpd processes working in the router view's directory (ours only)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            ours = proc.name.isdigit() and b"pmbmpd" in (proc / "cmdline").read_bytes()
            if ours and (proc / "cwd").resolve() == workdir.resolve():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_killed_collector_leaves_no_pmbmpd_and_its_successor_rebuilds_the_view(
    controller: Controller, web_lb: dict[str, Any]
) -> None:
    ctl, lb = controller, web_lb
    installed = all_installed(ctl, lb)
    workdir = ctl.state_dir / "routerview"
    assert len(_pmbmpd_in(workdir)) == 1
    collector = ctl.processes["routerview"]
    collector.kill()  # SIGKILL, the collector alone (not its process group)
    collector.wait()
    wait_until(lambda: _pmbmpd_in(workdir) == [], 5, "its pmbmpd gone with it")
    ctl.start_routerview()
    assert all_installed(ctl, lb) == installed
