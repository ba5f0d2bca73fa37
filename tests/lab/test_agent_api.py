"""The extended amphora API on a real agent: bad input is refused with a 4xx naming the problem and
changes nothing (registrations, announced routes, the ToR's FIB, the VIP on loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from l3dist.bgp.base import host_prefix
from l3dist.common import netlink
from l3dist.lab import amphora, fabric, vips
from l3dist.lab.amphora import LabAmphora
from l3dist.lab.config import LabConfig
from l3dist.lab.fib import FibWatcher, has, lacks
from l3dist.lab.traffic import finish_clients, start_long_lived

from .conftest import VIP4, VIP6

UNPLUGGED_VIP = "198.18.100.20"


@pytest.fixture(scope="module", params=["bird", "exabgp"])
def amp(request: pytest.FixtureRequest, lab: LabConfig, fib: FibWatcher) -> Iterator[LabAmphora]:
    created = amphora.create(lab, request.param)
    vips.announce(created, VIP4)
    vips.announce(created, VIP6)
    fib.wait_until(host_prefix(VIP4), has(created.frontend_ip4), timeout=30)
    fib.wait_until(host_prefix(VIP6), has(created.frontend_ip6), timeout=30)
    try:
        yield created
    finally:
        amphora.delete(created.id)


@pytest.fixture
def http(amp: LabAmphora) -> Iterator[httpx.Client]:
    with amp.client() as client:
        yield client.http


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
