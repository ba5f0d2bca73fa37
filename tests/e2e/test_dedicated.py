"""A dedicated distributor through the whole control plane (issue 15): the operator creates an
L3_BGP distributor with ``mode: dedicated``; the worker builds its two distributor amphorae on
hosts of the pool, which hold the only BGP sessions with the router; a load balancer on it
gets three load-balancing amphorae that run no BGP, and the router has a 3-way ECMP route for
its VIP from the two sessions (ADD-PATH). Deleting the load balancer withdraws the route;
deleting the distributor returns its hosts to the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from l3dist.bgp.base import host_prefix
from l3dist_lab import fabric, scenario
from l3dist_lab import site as lab_site
from l3dist_lab.fib import FibWatcher
from l3dist_lab.traffic import run_clients
from tests.conftest import database_url

from .conftest import Controller, controller_on_site, create_web_lb, delete_lb, wait_until


@pytest.fixture(scope="module")
def ctl(lab_prerequisites: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    work = tmp_path_factory.mktemp("dedicated")
    with database_url("sqlite", work) as url:
        yield from controller_on_site(url, work)


def sessions_from(addresses: set[str]) -> dict[str, str]:
    return {s.peer: s.state for s in fabric.bgp_sessions() if s.peer in addresses}


def test_a_dedicated_distributor_announces_three_amphorae_over_two_sessions(
    ctl: Controller,
) -> None:
    combined = ctl.site.distributor
    config = {
        "bgp_speaker_ids": combined["config_data"]["bgp_speaker_ids"],
        "mode": "dedicated",
        "distributor_amphorae": 2,
    }
    body = {"distributor": {"name": "dedicated", "distributor_type": "L3_BGP",
                            "config_data": config}}  # fmt: skip
    made = ctl.call("POST", "/v2/lbaas/distributors", body, expect=201)["distributor"]
    distributor = scenario.wait_for_distributor(ctl, made["id"], timeout=120)
    assert distributor["config_data"]["nexthop_bfd"] == {
        "transmit_interval_ms": 50,
        "receive_interval_ms": 50,
        "detect_multiplier": 3,
    }
    amphorae = ctl.call("GET", "/v2/octavia/amphorae")["amphorae"]
    speakers = [a for a in amphorae if a["distributor_id"] == distributor["id"]]
    assert [a["service_type"] for a in speakers] == ["distributor", "distributor"]
    assert {a["loadbalancer_id"] for a in speakers} == {None}
    speaker_ips = {a["lb_network_ip"] for a in speakers}
    assert set(sessions_from(speaker_ips).values()) == {"Established"}

    lb = create_web_lb(ctl, distributor, 3)
    prefix = host_prefix(lb["vip_address"])
    balancers = scenario.amphorae_of(ctl, lb["id"])
    nexthops = {a["frontend_ip"] for a in balancers}
    wait_until(lambda: set(fabric.fib_nexthops(prefix)) == nexthops, 30, "a 3-way route")
    # Only the distributors peer with the router; the tenant's amphorae run no BGP.
    peers = {s.peer for s in fabric.bgp_sessions()}
    assert not peers & {a["lb_network_ip"] for a in balancers}
    for amp in balancers:
        with ctl.site.agent(amp) as client:
            assert client.bgp_status()["peers"] == []
            assert set(client.bfd_status()["sessions"].values()) == {"Up"}
    for amp in speakers:
        with ctl.site.agent(amp) as client:
            status = client.bgp_status()
            assert {p["add_path"] for p in status["peers"]} == {True}
            assert {r["nexthop_ip"] for r in status["routes"]} == nexthops
    result = run_clients(lb["vip_address"], 150)
    assert result["failures"] == 0, result
    assert set(result["per_amphora"]) == {a["id"] for a in balancers}

    # Register VIP through the API: a UDP server's address on the front end as the next hop;
    # the distributor amphorae announce it (it runs no BFD: not watched), and withdraw it.
    endpoint = str(ctl.site.cfg.frontend.v4[200])
    udp_vip = ctl.site.cfg.vip(4, 60)
    routes = f"/v2/lbaas/distributors/{distributor['id']}/vips"
    made = ctl.call("POST", routes, {"vip": {"vip_ip": udp_vip, "nexthop_ip": endpoint}},
                    expect=201)["vip"]  # fmt: skip
    wait_until(lambda: fabric.fib_nexthops(host_prefix(udp_vip)) == [endpoint], 30,
               "the VIP route in the FIB")  # fmt: skip

    # The router may install the route before the job that sent it writes ACTIVE.
    def status() -> tuple[str, str]:
        shown = ctl.call("GET", f"{routes}/{made['id']}")["vip"]
        return shown["provisioning_status"], shown["operating_status"]

    wait_until(lambda: status()[0] != "PENDING_CREATE", 30, "the VIP route's job done")
    assert status() == ("ACTIVE", "ONLINE")
    ctl.call("DELETE", f"{routes}/{made['id']}", expect=204)
    wait_until(lambda: not fabric.fib_nexthops(host_prefix(udp_vip)), 30, "the VIP route gone")

    # In use: 409, nothing changes.
    path = f"/v2/lbaas/distributors/{distributor['id']}"
    refused = ctl.http.delete(path, headers=scenario.ADMIN)
    assert refused.status_code == 409, refused.text
    delete_lb(ctl, lb)
    wait_until(lambda: not fabric.fib_nexthops(prefix), 30, "the route withdrawn")

    ctl.call("DELETE", path, expect=204)
    wait_until(lambda: ctl.http.get(path, headers=scenario.ADMIN).status_code == 404, 60,
               "the distributor gone")  # fmt: skip
    wait_until(lambda: not sessions_from(speaker_ips), 30, "the distributors' sessions closed")
    pool = ctl.site.pool()
    held = [h for h in pool.values() if h["status"] != "AVAILABLE"]
    assert not held, held
    # The deleted amphorae run no speaker any more: only the site's distributor holds it.
    speaker = config["bgp_speaker_ids"][0]
    refused = ctl.http.delete(f"/v2/lbaas/bgpspeakers/{speaker}", headers=scenario.ADMIN)
    assert refused.status_code == 409, refused.text
    assert f"distributor {combined['id']}" in refused.text, refused.text


def test_a_frozen_distributor_amphora_is_replaced_and_the_route_never_shrinks(
    ctl: Controller,
) -> None:
    """A distributor amphora's host hangs: the router's BFD drops its session, the other
    distributor's paths carry the VIP (the route never loses a next hop); the health manager
    fails it over: a replacement from the pool holds a session and announces every path,
    the distributor is ACTIVE again. Thawed, the old host is fenced and reset."""
    speakers = ctl.site.distributor["config_data"]["bgp_speaker_ids"]
    body = {"distributor": {"name": "replaced", "distributor_type": "L3_BGP", "config_data": {
        "bgp_speaker_ids": speakers, "mode": "dedicated", "distributor_amphorae": 2}}}  # fmt: skip
    made = ctl.call("POST", "/v2/lbaas/distributors", body, expect=201)["distributor"]
    distributor = scenario.wait_for_distributor(ctl, made["id"], timeout=120)

    def distributor_amphorae() -> list[dict[str, Any]]:
        rows = ctl.call("GET", "/v2/octavia/amphorae")["amphorae"]
        return [a for a in rows if a["distributor_id"] == made["id"]]

    first = distributor_amphorae()
    lb = create_web_lb(ctl, distributor, 2)
    prefix = host_prefix(lb["vip_address"])
    nexthops = {a["frontend_ip"] for a in scenario.amphorae_of(ctl, lb["id"])}
    wait_until(lambda: set(fabric.fib_nexthops(prefix)) == nexthops, 30, "a 2-way route")

    by_id = {h.host_id: h for h in ctl.site.hosts}
    dead = first[0]
    frozen = by_id[dead["compute_id"]]
    with FibWatcher() as fib:
        lab_site.freeze(frozen)
        try:

            def replaced() -> bool:
                now = {a["id"] for a in distributor_amphorae() if a["status"] == "ALLOCATED"}
                shown = ctl.call("GET", f"/v2/lbaas/distributors/{made['id']}")["distributor"]
                return len(now) == 2 and dead["id"] not in now and shown["status"] == "ACTIVE"

            wait_until(replaced, 120, "the frozen distributor amphora replaced, ACTIVE")
            (new,) = [a for a in distributor_amphorae() if a["id"] != first[1]["id"]]
            wait_until(lambda: sessions_from({new["lb_network_ip"]}) == {
                new["lb_network_ip"]: "Established"}, 30, "the replacement's session")  # fmt: skip
            with ctl.site.agent(new) as client:
                wait_until(lambda: {r["nexthop_ip"] for r in client.bgp_status()["routes"]}
                           == nexthops, 30, "the replacement announces both paths")  # fmt: skip
            result = run_clients(lb["vip_address"], 100)
        finally:
            lab_site.thaw(frozen)
    shrunk = [c for c in fib.history if c.prefix == prefix and len(c.nexthops) < 2]
    assert shrunk == [], "the VIP lost a next hop while a distributor amphora was replaced"
    assert result["failures"] == 0, result

    delete_lb(ctl, lb)
    path = f"/v2/lbaas/distributors/{made['id']}"
    ctl.call("DELETE", path, expect=204)
    wait_until(lambda: ctl.http.get(path, headers=scenario.ADMIN).status_code == 404, 60,
               "the distributor gone")  # fmt: skip
    # The thawed host fenced itself; the controller resets it and offers it again.
    wait_until(lambda: {h["status"] for h in ctl.site.pool().values()} == {"AVAILABLE"}, 90,
               "every host back in the pool")  # fmt: skip


def test_a_dedicated_distributor_scales_out_and_in_without_losing_a_path(
    ctl: Controller,
) -> None:
    """distributor_amphorae 2 -> 3: a third distributor amphora from the pool holds a
    session and announces both paths; 3 -> 2: it goes (its session closed, its host back in
    the pool); the VIP never loses a next hop and no request fails."""
    speakers = ctl.site.distributor["config_data"]["bgp_speaker_ids"]
    config = {"bgp_speaker_ids": speakers, "mode": "dedicated", "distributor_amphorae": 2}
    body = {"distributor": {"name": "scaled", "distributor_type": "L3_BGP",
                            "config_data": config}}  # fmt: skip
    made = ctl.call("POST", "/v2/lbaas/distributors", body, expect=201)["distributor"]
    distributor = scenario.wait_for_distributor(ctl, made["id"], timeout=120)
    path = f"/v2/lbaas/distributors/{made['id']}"

    def running() -> dict[str, dict[str, Any]]:
        rows = ctl.call("GET", "/v2/octavia/amphorae")["amphorae"]
        return {a["id"]: a for a in rows if a["distributor_id"] == made["id"]
                and a["status"] == "ALLOCATED"}  # fmt: skip

    def scale(count: int) -> None:
        change = {"distributor": {"config_data": {**config, "distributor_amphorae": count}}}
        ctl.call("PUT", path, change)
        wait_until(lambda: len(running()) == count, 120, f"{count} distributor amphorae")
        scenario.wait_for_distributor(ctl, made["id"], timeout=60)

    first = running()
    lb = create_web_lb(ctl, distributor, 2)
    prefix = host_prefix(lb["vip_address"])
    nexthops = {a["frontend_ip"] for a in scenario.amphorae_of(ctl, lb["id"])}
    wait_until(lambda: set(fabric.fib_nexthops(prefix)) == nexthops, 30, "a 2-way route")
    with FibWatcher() as fib:
        scale(3)
        (added,) = [a for i, a in running().items() if i not in first]
        ip = added["lb_network_ip"]
        wait_until(lambda: sessions_from({ip}) == {ip: "Established"}, 30, "its session")
        with ctl.site.agent(added) as client:
            wait_until(lambda: {r["nexthop_ip"] for r in client.bgp_status()["routes"]}
                       == nexthops, 30, "the new one announces both paths")  # fmt: skip
            assert {p["add_path"] for p in client.bgp_status()["peers"]} == {True}
        result = run_clients(lb["vip_address"], 100)
        scale(2)
        assert set(running()) == set(first)
        wait_until(lambda: not sessions_from({ip}), 30, "its session closed")
        after = run_clients(lb["vip_address"], 100)
    shrunk = [c for c in fib.history if c.prefix == prefix and len(c.nexthops) < 2]
    assert shrunk == [], "the VIP lost a next hop while the distributor scaled"
    assert result["failures"] == 0 and after["failures"] == 0, (result, after)
    host = ctl.site.pool()
    assert {h["status"] for h in host.values() if h["id"] == added["compute_id"]} == {
        "AVAILABLE"}, host  # fmt: skip

    delete_lb(ctl, lb)
    ctl.call("DELETE", path, expect=204)
    wait_until(lambda: ctl.http.get(path, headers=scenario.ADMIN).status_code == 404, 60,
               "the distributor gone")  # fmt: skip


def test_bad_dedicated_settings_are_refused_naming_the_key(ctl: Controller) -> None:
    speakers = ctl.site.distributor["config_data"]["bgp_speaker_ids"]
    for config, field in (
        ({"mode": "sideways"}, "config_data.mode"),
        ({"mode": "dedicated", "distributor_amphorae": 1}, "config_data.distributor_amphorae"),
        ({"mode": "dedicated", "nexthop_bfd": {"detect_multiplier": 1}},
         "config_data.nexthop_bfd.detect_multiplier"),
        ({"distributor_amphorae": 2}, "config_data.distributor_amphorae"),
    ):  # fmt: skip
        data = {"bgp_speaker_ids": speakers, **config}
        body = {"distributor": {"name": "bad", "distributor_type": "L3_BGP", "config_data": data}}
        answer = ctl.http.post("/v2/lbaas/distributors", json=body, headers=scenario.ADMIN)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == field, answer.text
    names = {d["name"] for d in ctl.call("GET", "/v2/lbaas/distributors")["distributors"]}
    assert "bad" not in names
    # The mode is fixed once the distributor exists.
    combined = ctl.site.distributor
    change = {"distributor": {"config_data": {"bgp_speaker_ids": speakers, "mode": "dedicated"}}}
    answer = ctl.http.put(f"/v2/lbaas/distributors/{combined['id']}", json=change,
                          headers=scenario.ADMIN)  # fmt: skip
    assert answer.status_code == 409, answer.text
    assert answer.json()["field"] == "config_data.mode"
