"""Route safety (issue 14) on real daemons: no amphora makes the fabric route an address that is
not an anycast VIP of its own pools, and each layer holds on its own.

(a) the agent, driven as a compromised or buggy controller would: 403, nothing registered, no
    route at the ToR (BGP table, what the session sent, kernel FIB);
(b) the speaker, fed foreign routes past the agent: BIRD's export filter and ExaBGP's driver send
    nothing outside the pools (the ToR's pre-policy view: what the session RECEIVED);
(c) the ToR on its own: a speaker whose own filter is bypassed does send foreign routes, and the
    ToR's inbound prefix-list drops every one of them (BGP table, kernel FIB).

Every test also makes a pool host route arrive the same way, so it cannot pass on a dead path.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from l3dist.bgp.base import Route, RouteRefused, SpeakerDriver, host_prefix, make_driver
from l3dist.bgp.bird import BirdDriver
from l3dist.bgp.exabgp import ExaBgpDriver
from l3dist.contracts import agent_config
from l3dist_lab import amphora, fabric, vips
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.config import LabConfig
from l3dist_lab.fib import FibWatcher, has, lacks

from .conftest import VIP4, VIP6

# What a tenant (or a broken controller) might try to make the fabric route.
FOREIGN_VIPS = [
    pytest.param("8.8.8.8", id="internet-v4"),
    pytest.param("0.0.0.0", id="unspecified-v4"),
    pytest.param("198.18.3.10", id="member-subnet"),
    pytest.param("2001:db8::10", id="foreign-v6"),
    pytest.param("::", id="unspecified-v6"),
]
# Routes no speaker may send: default routes, the pools as aggregates, foreign host routes.
FOREIGN_PREFIXES = {
    4: ["0.0.0.0/0", "8.8.8.0/24", "8.8.8.8/32", "198.18.100.0/24", "198.18.3.10/32"],
    6: ["::/0", "2001:db8::/32", "2001:db8::10/128", "fd00:198:18:100::/64"],
}
# Pool host routes that must arrive the same way (the test's proof that the path works).
POOL_HOST = {4: "198.18.100.41", 6: "fd00:198:18:100::41"}


def in_pools(prefix: str, lab: LabConfig) -> bool:
    """A host route inside the lab's anycast pools: the only thing the ToR may ever hold."""
    net = ipaddress.ip_network(prefix)
    pool = lab.anycast(net.version)
    return net.prefixlen == net.max_prefixlen and net.subnet_of(pool)  # type: ignore[arg-type]


def session_peer(amp: LabAmphora, version: int) -> str:
    """The address the ToR knows the amphora's session of that family by."""
    return amp.mgmt_ip4 if version == 4 else amp.mgmt_ip6


def router_view(amp: LabAmphora, version: int) -> dict[str, list[str]]:
    """The ToR's three views: what the session sent (pre-policy), the BGP table, the FIB."""
    return {
        "received": fabric.received_routes(session_peer(amp, version)),
        "bgp": sorted(fabric.bgp_routes(version)),
        "fib": fabric.kernel_bgp_routes(version),
    }


def outside_pools(view: dict[str, list[str]], lab: LabConfig) -> dict[str, list[str]]:
    return {k: [p for p in v if not in_pools(p, lab)] for k, v in view.items()}


def fib_never_had_a_foreign_route(fib: FibWatcher, lab: LabConfig, since: int) -> None:
    """Not one kernel route change outside the pools since the test began (history index)."""
    foreign = sorted({c.prefix for c in fib.history[since:] if not in_pools(c.prefix, lab)})
    assert foreign == [], f"the ToR's FIB routed {foreign}"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def agent_state(http: httpx.Client) -> dict[str, Any]:
    return {
        "amphorae": http.get("/1.0/distributor/amphorae").json(),
        "vips": http.get("/1.0/distributor/vips").json(),
        "routes": http.get("/1.0/distributor/bgp").json()["routes"],
    }


def test_the_tor_keeps_what_each_session_sent_before_policy(amp: LabAmphora) -> None:
    """soft-reconfiguration inbound works with the listen-range (dynamic) neighbours: the
    pre-policy view the next tests rely on shows the amphora's VIPs."""
    assert fabric.received_routes(amp.mgmt_ip4) == [host_prefix(VIP4)]
    assert fabric.received_routes(amp.mgmt_ip6) == [host_prefix(VIP6)]
    assert fabric.bgp_routes(4)[host_prefix(VIP4)] == [amp.mgmt_ip4]
    # The IPv6 route-map still applies: the next hop is the front end's global address.
    assert fabric.fib_nexthops(host_prefix(VIP6)) == [amp.frontend_ip6]


# -- (a) the agent ----------------------------------------------------------------------------


@pytest.mark.parametrize("vip", FOREIGN_VIPS)
def test_agent_refuses_foreign_vips_and_nothing_reaches_the_tor(
    amp: LabAmphora, http: httpx.Client, fib: FibWatcher, lab: LabConfig, vip: str
) -> None:
    since = len(fib.history)
    version = ipaddress.ip_address(vip).version
    nexthop = amp.frontend_ip(version)
    before = agent_state(http)
    # A compromised controller first puts the address on loopback, which the agent allows (it
    # announces nothing): the pools are then all that stands between it and the fabric.
    plugged = vip not in ("0.0.0.0", "::")
    if plugged:
        assert http.post(f"/1.0/plug/vip/{vip}").status_code in (200, 202)
    try:
        calls = [
            ("/1.0/distributor/amphorae", {"amphora_id": amp.id, "vip_ip": vip,
                                            "nexthop_ip": nexthop}),
            ("/1.0/distributor/amphorae", {"amphora_id": "someone-else", "vip_ip": vip,
                                            "nexthop_ip": nexthop}),
            ("/1.0/distributor/vips", {"vip_ip": vip, "nexthop_ip": nexthop}),
        ]  # fmt: skip
        for path, body in calls:
            answer = http.post(path, json=body)
            assert answer.status_code == 403, (path, answer.text)
            assert answer.json()["field"] == "vip_ip", answer.text
            assert vip in answer.json()["message"], answer.text
        assert agent_state(http) == before, "the agent changed something"
    finally:
        if plugged:
            http.delete(f"/1.0/plug/vip/{vip}")

    # A good VIP registered the same way after the refusals reaches the ToR: the speaker sends
    # in order, so once it is there, anything sent before it would be there too.
    good = POOL_HOST[version]
    assert http.post(f"/1.0/plug/vip/{good}").status_code in (200, 202)
    answer = http.post(
        "/1.0/distributor/amphorae",
        json={"amphora_id": amp.id, "vip_ip": good, "nexthop_ip": nexthop},
    )
    assert answer.status_code == 201, answer.text
    try:
        fib.wait_until(host_prefix(good), has(nexthop), timeout=15)
        view = router_view(amp, version)
        assert host_prefix(good) in view["received"] and host_prefix(good) in view["bgp"]
        assert outside_pools(view, lab) == {"received": [], "bgp": [], "fib": []}
        assert host_prefix(vip) not in fabric.bgp_routes(version)
        fib_never_had_a_foreign_route(fib, lab, since)
    finally:
        gone = http.delete(
            f"/1.0/distributor/amphorae/{amp.id}", params={"vip_ip": good, "nexthop_ip": nexthop}
        )
        assert gone.status_code == 204, gone.text
    fib.wait_until(host_prefix(good), lacks(nexthop), timeout=15)


# -- (b) the speaker's own policy -------------------------------------------------------------


def direct_driver(amp: LabAmphora) -> tuple[SpeakerDriver, frozenset[Route]]:
    """A driver object on the amphora's running speaker (the configuration the host's agent
    built, its work directory and FIFO), as the agent's own is, and the routes the agent has
    it announce now."""
    drive = agent_config.load(amp.agent_config_path)
    local: dict[int, str] = {a.version: str(a.ip) for a in drive.management.addresses}
    driver = make_driver(drive.bgp, local, drive.state_dir / "bgp", drive.anycast_prefixes)
    with amp.client() as client:
        current = frozenset(
            Route(r["prefix"], r["nexthop_ip"], r["peer_id"]) for r in client.bgp_status()["routes"]
        )
    driver.routes = current
    return driver, current


def foreign_routes(amp: LabAmphora) -> frozenset[Route]:
    return frozenset(
        Route(prefix, amp.frontend_ip(version), f"tor-v{version}")
        for version, prefixes in FOREIGN_PREFIXES.items()
        for prefix in prefixes
    )


def pool_routes(amp: LabAmphora) -> frozenset[Route]:
    return frozenset(
        Route(host_prefix(POOL_HOST[v]), amp.frontend_ip(v), f"tor-v{v}") for v in (4, 6)
    )


def wait_received(amp: LabAmphora, wanted: Callable[[list[str]], bool], version: int) -> None:
    peer = session_peer(amp, version)
    wait_for(lambda: wanted(fabric.received_routes(peer)), f"routes received from {peer}")


def test_speaker_sends_nothing_outside_the_pools_even_when_handed_it(
    amp: LabAmphora, fib: FibWatcher, lab: LabConfig
) -> None:
    """The agent bypassed: the speaker driver itself is handed default routes, aggregates and
    foreign prefixes beside a pool host route. BIRD's export filter drops them in the daemon;
    ExaBGP's driver refuses the change before it writes a command, and the pool route alone
    then goes. The ToR RECEIVED (pre-policy) nothing outside the pools."""
    since = len(fib.history)
    driver, current = direct_driver(amp)
    foreign, pool = foreign_routes(amp), pool_routes(amp)
    try:
        if isinstance(driver, ExaBgpDriver):
            with pytest.raises(RouteRefused):
                driver.apply(current | foreign | pool)
            assert driver.routes == current, "a refused change is not half applied"
            driver.apply(current | pool)
        else:
            assert isinstance(driver, BirdDriver)
            driver.apply(current | foreign | pool)  # BIRD takes them into its static routes
            statics = driver.birdc(["show", "route", "table", "master4"])
            assert "8.8.8.8/32" in statics, "the foreign route never reached BIRD"
        for version in (4, 6):
            wait_received(amp, lambda got, v=version: host_prefix(POOL_HOST[v]) in got, version)
            fib.wait_until(host_prefix(POOL_HOST[version]), has(amp.frontend_ip(version)))
            time.sleep(0.2)  # BIRD exports a configure's routes together; margin for stragglers
            view = router_view(amp, version)
            assert outside_pools(view, lab) == {"received": [], "bgp": [], "fib": []}, view
        fib_never_had_a_foreign_route(fib, lab, since)
    finally:
        driver.apply(current)
    for version in (4, 6):
        fib.wait_until(host_prefix(POOL_HOST[version]), lambda hops: not hops)


# -- (c) the router's import filter on its own ------------------------------------------------


def bypass_speaker_filter(amp: LabAmphora, routes: frozenset[Route]) -> None:
    """Make the speaker send routes with its own filter out of the way: BIRD with the export
    guard cut from its main configuration; ExaBGP with raw commands into its API FIFO."""
    driver, _ = direct_driver(amp)
    if isinstance(driver, BirdDriver):
        main = driver.main_config()
        guard = [line for line in main.splitlines() if "then reject;" in line]
        assert len(guard) == 2, main
        for line in guard:
            main = main.replace(line + "\n", "")
        driver.routes_path.write_text(driver.routes_config(routes))
        driver.conf_path.write_text(main)
        driver.birdc(["configure"])
    else:
        assert isinstance(driver, ExaBgpDriver)
        lines = [
            f"neighbor {driver._peer_ip(r.peer_id)} announce route {r.prefix} "
            f"next-hop {r.nexthop} origin igp"
            for r in sorted(routes - driver.routes)
        ]
        fd = os.open(driver.fifo_path, os.O_WRONLY)
        try:
            os.write(fd, ("\n".join(lines) + "\n").encode())
        finally:
            os.close(fd)


def restore_speaker(amp: LabAmphora, sent: frozenset[Route]) -> None:
    driver, current = direct_driver(amp)
    if isinstance(driver, BirdDriver):
        driver.apply(current)  # both files rewritten by the driver: the guard is back
    else:
        assert isinstance(driver, ExaBgpDriver)
        driver._send([driver._withdraw(r) for r in sorted(sent - current)])


def test_the_tor_drops_foreign_routes_a_speaker_sends_past_its_own_filter(
    amp: LabAmphora, fib: FibWatcher, lab: LabConfig
) -> None:
    since = len(fib.history)
    _, current = direct_driver(amp)
    foreign, pool = foreign_routes(amp), pool_routes(amp)
    sent = current | foreign | pool
    bypass_speaker_filter(amp, sent)
    try:
        for version in (4, 6):
            wanted = {r.prefix for r in foreign | pool if r.version == version}
            wait_received(amp, lambda got, w=wanted: w <= set(got), version)
            fib.wait_until(host_prefix(POOL_HOST[version]), has(amp.frontend_ip(version)))
            view = router_view(amp, version)
            # The speaker did send them (the bypass worked) ...
            assert set(FOREIGN_PREFIXES[version]) <= set(view["received"]), view
            # ... and the ToR's inbound policy kept none of them.
            assert outside_pools(view, lab)["bgp"] == [], view
            assert outside_pools(view, lab)["fib"] == [], view
            assert host_prefix(POOL_HOST[version]) in view["bgp"]
        fib_never_had_a_foreign_route(fib, lab, since)
        route = subprocess.run(
            ["ip", "-n", fabric.TOR_NS, "route", "get", "8.8.8.8"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "proto bgp" not in route.stdout, route.stdout
    finally:
        restore_speaker(amp, sent)
    for version in (4, 6):
        peer = session_peer(amp, version)
        wait_for(
            lambda p=peer, v=version: (
                fabric.received_routes(p) == [host_prefix(VIP4 if v == 4 else VIP6)]
            ),
            "the speaker back to its own routes",
        )


# -- the router's cap on routes per session ---------------------------------------------------


def test_a_session_sending_more_routes_than_the_cap_is_reset_alone(
    lab: LabConfig, fib: FibWatcher
) -> None:
    """An amphora that floods pool host routes (each one acceptable) past the ToR's
    maximum-prefix loses its session and so its routes; a well-behaved amphora announcing the
    same VIP keeps its next hop in the ToR's FIB throughout."""
    vip = lab.vip(6, 0x60)
    prefix = host_prefix(vip)
    good, flooder = amphora.create(lab, "bird"), amphora.create(lab, "exabgp")
    try:
        for amp in (good, flooder):
            vips.announce(amp, vip)
        both = {good.frontend_ip6, flooder.frontend_ip6}
        fib.wait_until(prefix, lambda hops: both <= hops, timeout=30)
        since = len(fib.history)
        driver, _ = direct_driver(flooder)
        assert isinstance(driver, ExaBgpDriver)
        flood = [
            f"neighbor {driver._peer_ip('tor-v6')} announce route {lab.anycast(6)[0x1000 + i]}/128"
            f" next-hop {flooder.frontend_ip6} origin igp"
            for i in range(lab.max_prefixes + 1)
        ]
        fd = os.open(driver.fifo_path, os.O_WRONLY)
        try:
            os.write(fd, ("\n".join(flood) + "\n").encode())
        finally:
            os.close(fd)
        fib.wait_until(prefix, lacks(flooder.frontend_ip6), timeout=15)
        changes = [c for c in fib.history[since:] if c.prefix == prefix]
        assert changes and all(good.frontend_ip6 in c.nexthops for c in changes), changes
        assert len(fabric.bgp_routes(6)) <= lab.max_prefixes + 2, "the cap did not hold"
    finally:
        for amp in (good, flooder):
            amphora.delete(amp.id)
