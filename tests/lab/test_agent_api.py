"""The extended amphora API on a real agent: bad input is refused with a 4xx naming the problem and
changes nothing (registrations, announced routes, the ToR's FIB, the VIP on loopback)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from l3dist.bgp.base import host_prefix
from l3dist.common import netlink
from l3dist.network.catalog import stable_id
from l3dist_lab import fabric, plumbing
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.config import CLIENT_NS, LabConfig
from l3dist_lab.fib import FibWatcher, has, lacks
from l3dist_lab.traffic import finish_clients, start_long_lived

from .conftest import VIP4, VIP6

UNPLUGGED_VIP = "198.18.100.20"


def snapshot(amp: LabAmphora, http: httpx.Client) -> dict[str, Any]:
    return {
        "registrations": http.get("/1.0/distributor/amphorae").json(),
        "routes": http.get("/1.0/distributor/bgp").json()["routes"],
        "fib": fabric.anycast_routes(),
        "lo": sorted(netlink.addresses(amp.haproxy_ns, "lo")),
    }


def test_info_names_the_amphora(amp: LabAmphora, http: httpx.Client) -> None:
    info = http.get("/1.0/info").json()
    assert info["amphora_id"] == amp.id
    assert info["api_version"] == "1.0"
    assert info["speaker_driver"] == amp.speaker_driver
    assert info["haproxy_running"] is True


def test_list_amphora_filters(amp: LabAmphora, http: httpx.Client) -> None:
    everything = http.get("/1.0/distributor/amphorae").json()["amphorae"]
    assert {(r["vip_ip"], r["nexthop_ip"]) for r in everything} == {
        (VIP4, amp.frontend_ip4),
        (VIP6, amp.frontend_ip6),
    }
    only_v6 = http.get("/1.0/distributor/amphorae", params={"vip_ip": VIP6}).json()["amphorae"]
    assert [r["announced_to"] for r in only_v6] == [["tor-v6"]]
    none = http.get("/1.0/distributor/amphorae", params={"amphora_id": "other"}).json()
    assert none == {"amphorae": []}


def register(amp: LabAmphora, **overrides: Any) -> dict[str, Any]:
    body = {"amphora_id": amp.id, "vip_ip": VIP4, "nexthop_ip": amp.frontend_ip4}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


BAD_REGISTERS = [
    pytest.param({"vip_ip": "300.1.1.1"}, 400, "vip_ip", id="malformed-vip"),
    pytest.param({"nexthop_ip": "nope"}, 400, "nexthop_ip", id="malformed-nexthop"),
    pytest.param({"amphora_id": None}, 400, "amphora_id", id="missing-amphora-id"),
    pytest.param({"amphora_id": "x" * 37}, 400, "amphora_id", id="over-long-amphora-id"),
    pytest.param({"amphora_id": 12}, 400, "amphora_id", id="wrong-type"),
    pytest.param({"color": "blue"}, 400, "color", id="unknown-field"),
    pytest.param({"vip_ip": UNPLUGGED_VIP}, 409, "vip_ip", id="vip-not-on-loopback"),
    pytest.param({"nexthop_ip": "198.18.0.50"}, 400, "nexthop_ip", id="nexthop-off-frontend"),
    pytest.param({"nexthop_ip": "fd00:198:18:1::b"}, 400, "nexthop_ip", id="nexthop-family"),
    pytest.param({"peer_id": "no-such-peer"}, 404, "peer_id", id="unknown-peer"),
    pytest.param({"peer_id": "tor-v6"}, 400, "peer_id", id="peer-family"),
    pytest.param({}, 409, "already registered", id="duplicate"),
    pytest.param(
        {"amphora_id": "another-amphora", "nexthop_ip": "198.18.1.200"},
        409,
        "one next hop per VIP and peer",
        id="second-nexthop-same-peer",
    ),
]


@pytest.mark.parametrize(("overrides", "status", "named"), BAD_REGISTERS)
def test_bad_register_is_refused_and_changes_nothing(
    amp: LabAmphora, http: httpx.Client, overrides: dict[str, Any], status: int, named: str
) -> None:
    before = snapshot(amp, http)
    response = http.post("/1.0/distributor/amphorae", json=register(amp, **overrides))
    assert response.status_code == status, response.text
    assert named in response.json()["message"]
    assert snapshot(amp, http) == before


BAD_UNREGISTERS = [
    pytest.param({"vip_ip": "1.2.3", "nexthop_ip": "198.18.1.11"}, 400, "vip_ip", id="malformed"),
    pytest.param({"nexthop_ip": "198.18.1.11"}, 400, "vip_ip", id="missing-vip"),
    pytest.param(
        {"vip_ip": "198.18.100.99", "nexthop_ip": "198.18.1.11"},
        404,
        "not registered",
        id="unknown",
    ),
    pytest.param(
        {"vip_ip": VIP4, "nexthop_ip": "198.18.1.99"}, 404, "not registered", id="other-nexthop"
    ),
    pytest.param(
        {"vip_ip": VIP4, "nexthop_ip": "198.18.1.11", "peer_id": "tor-v4"},
        404,
        "not registered",
        id="other-peer",
    ),
]


@pytest.mark.parametrize(("params", "status", "named"), BAD_UNREGISTERS)
def test_bad_unregister_is_refused_and_changes_nothing(
    amp: LabAmphora, http: httpx.Client, params: dict[str, str], status: int, named: str
) -> None:
    before = snapshot(amp, http)
    response = http.delete(f"/1.0/distributor/amphorae/{amp.id}", params=params)
    assert response.status_code == status, response.text
    assert named in response.json()["message"]
    assert snapshot(amp, http) == before


def test_vip_plugging_errors(amp: LabAmphora, http: httpx.Client) -> None:
    before = snapshot(amp, http)
    bad = http.post("/1.0/plug/vip/not-an-ip")
    assert bad.status_code == 400
    assert "vip" in bad.json()["message"]
    in_use = http.delete(f"/1.0/plug/vip/{VIP4}")
    assert in_use.status_code == 409
    assert "still registered" in in_use.json()["message"]
    absent = http.delete(f"/1.0/plug/vip/{UNPLUGGED_VIP}")
    assert absent.status_code == 404
    assert snapshot(amp, http) == before


def test_register_for_another_amphora_and_a_single_peer(
    amp: LabAmphora, http: httpx.Client, fib: FibWatcher
) -> None:
    """A distributor announces a VIP for a next hop that is not its own, to one peer only."""
    vip, nexthop = "198.18.100.30", "198.18.1.200"
    prefix = host_prefix(vip)
    body = {
        "amphora_id": "lb-amphora-elsewhere",
        "vip_ip": vip,
        "nexthop_ip": nexthop,
        "peer_id": "tor-v4",
    }
    response = http.post("/1.0/distributor/amphorae", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["registration"]["announced_to"] == ["tor-v4"]
    fib.wait_until(prefix, has(nexthop))

    response = http.delete(
        "/1.0/distributor/amphorae/lb-amphora-elsewhere",
        params={"vip_ip": vip, "nexthop_ip": nexthop, "peer_id": "tor-v4"},
    )
    assert response.status_code == 204
    fib.wait_until(prefix, lacks(nexthop))


def test_drain_withdraws_keeps_the_vip_counts_connections_and_register_calls_it_off(
    amp: LabAmphora, http: httpx.Client, fib: FibWatcher
) -> None:
    prefix = host_prefix(VIP4)
    body = {"vip_ip": VIP4, "nexthop_ip": amp.frontend_ip4}
    unknown = http.post(
        f"/1.0/distributor/amphorae/{amp.id}/drain", json={**body, "nexthop_ip": "198.18.1.99"}
    )
    assert unknown.status_code == 404 and "amphora_id" in unknown.json()["field"]

    clients = start_long_lived(VIP4, 20, 4)
    try:
        own = {"amphora_id": amp.id, "vip_ip": VIP4}
        deadline = time.monotonic() + 10
        while (
            http.get("/1.0/distributor/amphorae", params=own).json()["amphorae"][0]["connections"]
            < 20
        ):
            assert time.monotonic() < deadline, "the 20 connections were never counted"
            time.sleep(0.1)
        drained = http.post(f"/1.0/distributor/amphorae/{amp.id}/drain", json=body)
        assert drained.status_code == 202, drained.text
        entry = drained.json()["registration"]
        assert (entry["draining"], entry["announced_to"]) == (True, [])
        assert entry["connections"] >= 20
        fib.wait_until(prefix, lacks(amp.frontend_ip4), timeout=10)
        assert f"{VIP4}/32" in netlink.addresses(amp.haproxy_ns, "lo"), "the VIP stays"

        again = http.post("/1.0/distributor/amphorae", json=register(amp))
        assert again.status_code == 201, again.text
        assert again.json()["registration"]["draining"] is False
        fib.wait_until(prefix, has(amp.frontend_ip4), timeout=10)
    finally:
        finish_clients(clients)
    listed = http.get("/1.0/distributor/amphorae", params=own).json()["amphorae"]
    assert listed[0]["connections"] == 0, "closed connections are not counted"


ENDPOINT_NS = "l3d-udp-endpoint"  # the lab prefix: `lab down` removes it after a crash too
UDP_ECHO = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, "
    "socket.SOCK_DGRAM)\n"
    "s.bind((sys.argv[1], 5353))\n"
    "while True:\n"
    "    data, peer = s.recvfrom(2048)\n"
    "    s.sendto(b'endpoint:' + data, peer)\n"
)


def udp_through_the_tor(vip: str) -> str:
    """One datagram from the client namespace (it reaches the VIP only through the ToR)."""
    ask = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, "
        "socket.SOCK_DGRAM)\n"
        "s.settimeout(2)\n"
        "s.sendto(b'ping', (sys.argv[1], 5353))\n"
        "print(s.recvfrom(2048)[0].decode())\n"
    )
    argv = plumbing.netns_exec_argv(CLIENT_NS, [sys.executable, "-c", ask, vip])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def udp_endpoint(lab: LabConfig) -> Iterator[dict[str, str]]:
    """A UDP server on the front-end segment that is not an amphora, with VIPs on its
    loopback (the spec's use of Register VIP: non-amphora endpoints)."""
    driver = fabric.network_driver()
    plumbing.create_namespace(ENDPOINT_NS)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        port = driver.create_port(
            stable_id(lab.frontend.name), ENDPOINT_NS, "eth0", "udp-endpoint",
            "compute:l3dist-endpoint", default_routes=True,
        )  # fmt: skip
        endpoint = {"ip4": port.address(4), "ip6": port.address(6)}
        for version in (4, 6):
            vip = lab.vip(version, 70)
            endpoint[f"vip{version}"] = vip
            netlink.add_address(ENDPOINT_NS, "lo", host_prefix(vip))
            argv = plumbing.netns_exec_argv(ENDPOINT_NS, [sys.executable, "-c", UDP_ECHO, vip])
            servers.append(subprocess.Popen(argv))
        yield endpoint
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for port_obj in driver.ports_of("udp-endpoint"):
            driver.delete_port(port_obj.id)
        plumbing.delete_namespace(ENDPOINT_NS)


@pytest.mark.parametrize("version", [4, 6])
def test_register_vip_routes_to_an_endpoint_that_is_not_an_amphora(
    amp: LabAmphora,
    http: httpx.Client,
    fib: FibWatcher,
    udp_endpoint: dict[str, str],
    version: int,
) -> None:
    """Register VIP (spec P2): the amphora's speaker announces the VIP with the endpoint as next
    hop; the ToR routes it there and a datagram through the ToR gets the endpoint's answer.
    List VIP shows it; Unregister VIP withdraws it. Bad requests change nothing."""
    vip, nexthop = udp_endpoint[f"vip{version}"], udp_endpoint[f"ip{version}"]
    prefix = host_prefix(vip)
    before = snapshot(amp, http)
    refused = [
        ({"vip_ip": vip, "nexthop_ip": "203.0.113.9" if version == 4 else "2001:db8::9"},
         400, "nexthop_ip"),  # not on the front-end subnet
        ({"vip_ip": vip, "nexthop_ip": amp.frontend_ip(version)}, 400, "nexthop_ip"),  # own
        ({"vip_ip": vip, "nexthop_ip": udp_endpoint[f"ip{10 - version}"]}, 400, "nexthop_ip"),
        ({"vip_ip": vip, "nexthop_ip": nexthop, "peer_id": "no-such-peer"}, 404, "peer_id"),
        ({"vip_ip": vip, "nexthop_ip": nexthop, "port": 53}, 400, "port"),
        ({"vip_ip": VIP4 if version == 4 else VIP6, "nexthop_ip": nexthop}, 409, "vip_ip"),
    ]  # fmt: skip
    for body, status, field in refused:
        answer = http.post("/1.0/distributor/vips", json=body)
        assert (answer.status_code, answer.json()["field"]) == (status, field), answer.text
        assert field in answer.json()["message"] or status == 409, answer.text
    assert http.get("/1.0/distributor/vips").json() == {"vips": []}
    assert snapshot(amp, http) == before

    with amp.client() as client:
        registered = client.register_vip(vip, nexthop)
        assert registered["nexthop_ip"] == nexthop and registered["announced_to"]
        try:
            fib.wait_until(prefix, has(nexthop), timeout=30)
            assert fabric.fib_nexthops(prefix) == [nexthop]
            assert udp_through_the_tor(vip) == "endpoint:ping"
            again = http.post("/1.0/distributor/vips", json={"vip_ip": vip, "nexthop_ip": nexthop})
            assert again.status_code == 409, again.text
            assert client.list_vips(vip_ip=vip) == [registered]
            assert client.list_amphorae(vip_ip=vip) == [], "not an amphora registration"
            routes = {(r["prefix"], r["nexthop_ip"]) for r in client.bgp_status()["routes"]}
            assert (prefix, nexthop) in routes
        finally:
            client.unregister_vip(vip, nexthop)
        fib.wait_until(prefix, lambda hops: not hops, timeout=30)
        gone = http.delete(f"/1.0/distributor/vips/{vip}", params={"nexthop_ip": nexthop})
        assert gone.status_code == 404 and gone.json()["field"] == "vip_ip", gone.text
    assert snapshot(amp, http) == before
