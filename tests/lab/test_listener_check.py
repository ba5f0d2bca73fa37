"""Soft failure in a live amphora: HAProxy killed or hung. The agent's own listener check
withdraws the VIP route while the BGP session stays up, and announces it again when HAProxy
serves again (restarted by the agent's supervisor, or thawed)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from l3dist.bgp.base import host_prefix
from l3dist_lab import amphora, fabric, plumbing, vips
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.config import LabConfig
from l3dist_lab.fib import FibWatcher, has, lacks

from .conftest import VIP4


@pytest.fixture(scope="module")
def amp(lab: LabConfig, fib: FibWatcher) -> Iterator[LabAmphora]:
    created = amphora.create(lab, "bird")
    vips.announce(created, VIP4)
    fib.wait_until(host_prefix(VIP4), has(created.frontend_ip4), timeout=30)
    try:
        yield created
    finally:
        amphora.delete(created.id)


def haproxy_pids(amp: LabAmphora) -> list[int]:
    return plumbing.namespace_pids(amp.haproxy_ns)


def session_state(amp: LabAmphora) -> str:
    return {s.peer: s.state for s in fabric.bgp_sessions()}.get(amp.mgmt_ip4, "")


def test_killed_haproxy_withdraws_then_restarted_announces(
    amp: LabAmphora, fib: FibWatcher
) -> None:
    prefix, nexthop = host_prefix(VIP4), amp.frontend_ip4
    pids = haproxy_pids(amp)
    assert pids
    start = time.perf_counter()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    withdrawn = fib.wait_for(prefix, lacks(nexthop), start, timeout=5)
    assert session_state(amp) == "Established", "the session stays; only the route goes"
    # List Amphora tells the truth: registered still, announced to no peer, and why.
    [entry] = amp.client().list_amphorae(vip_ip=VIP4)
    assert (entry["announced_to"], entry["withdrawn"]) == ([], "listeners_down"), entry
    fib.wait_until(prefix, has(nexthop), timeout=20)  # the supervisor restarted HAProxy
    assert set(haproxy_pids(amp)).isdisjoint(pids)
    assert amp.client().bgp_status()["routes"], "announced again"
    [entry] = amp.client().list_amphorae(vip_ip=VIP4)
    assert (entry["announced_to"], entry["withdrawn"]) == (["tor-v4"], None), entry
    print(f"HAProxy killed -> next hop out of the FIB in {(withdrawn - start) * 1000:.0f} ms")


def test_hung_haproxy_counts_as_failed_after_the_timeout(
    amp: LabAmphora, fib: FibWatcher, lab: LabConfig
) -> None:
    """The amphora's own route goes; a Register VIP route (another endpoint on the front end)
    stays: that endpoint does not depend on this HAProxy."""
    prefix, nexthop = host_prefix(VIP4), amp.frontend_ip4
    other_vip, endpoint = lab.vip(4, 71), lab.frontend.host(4, 250)
    fib.wait_until(prefix, has(nexthop), timeout=20)
    with amp.client() as client:
        client.register_vip(other_vip, endpoint)
        try:
            fib.wait_until(host_prefix(other_vip), has(endpoint), timeout=20)
            pids = haproxy_pids(amp)
            start = time.perf_counter()
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            try:
                fib.wait_for(prefix, lacks(nexthop), start, timeout=10)
                assert session_state(amp) == "Established"
                assert fabric.fib_nexthops(host_prefix(other_vip)) == [endpoint]
            finally:
                for pid in pids:
                    os.kill(pid, signal.SIGCONT)
        finally:
            client.unregister_vip(other_vip, endpoint)
    fib.wait_until(prefix, has(nexthop), timeout=20)
    fib.wait_until(host_prefix(other_vip), lambda hops: not hops, timeout=20)


def test_one_failed_check_in_five_does_not_withdraw(amp: LabAmphora, fib: FibWatcher) -> None:
    """HAProxy's stats socket taken away for 30 ms every 250 ms (5 checks): single checks fail,
    never two in a row, and the route never moves."""
    prefix, nexthop = host_prefix(VIP4), amp.frontend_ip4
    fib.wait_until(prefix, has(nexthop), timeout=20)
    socket_path = amp.state_dir / "haproxy" / "haproxy.sock"
    aside = socket_path.with_name("haproxy.sock.aside")
    assert socket_path.exists()
    before = amp.client().info()["listener_check"]
    start = time.perf_counter()
    try:
        for _ in range(24):  # 6 s
            os.rename(socket_path, aside)
            time.sleep(0.03)
            os.rename(aside, socket_path)
            time.sleep(0.22)
    finally:
        if aside.exists():
            os.rename(aside, socket_path)
    after = amp.client().info()["listener_check"]
    failed = after["failed_checks"] - before["failed_checks"]
    checks = after["checks"] - before["checks"]
    assert failed >= 5, (failed, checks)  # the injection did make checks fail
    assert failed * 3 <= checks, (failed, checks)
    assert after["healthy"]
    with pytest.raises(TimeoutError):  # no change to the route at all
        fib.wait_for(prefix, lacks(nexthop), start, timeout=0.5)
