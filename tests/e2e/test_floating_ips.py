"""Floating IPs on an active-active VIP, end to end on the lab: the tenant binds a floating IP
to the load balancer's VIP port through the Neutron-shaped API, and the client, outside the
cloud, reaches the floating IP only through the ToR. The floating IP is one more address of
the load balancer's virtual-ip: every amphora announces it with its own front-end next hop
(N-way ECMP in the ToR's kernel FIB), HAProxy answers from it, and the members see what they
see through the VIP. A failover replaces an interface of the virtual-ip without any call that
touches the floating IP: its row does not change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from l3dist.bgp.base import host_prefix
from l3dist.db.models import FloatingIp
from l3dist.db.session import Database
from l3dist_lab import fabric, site, traffic
from l3dist_lab.traffic import ClientLoop, failures, finish_clients, start_long_lived
from tests.conftest import database_url
from tests.e2e.conftest import (
    Controller,
    amphorae_of,
    controller_on_site,
    create_web_lb,
    delete_lb,
    lb_path,
    wait_for_ecmp,
    wait_until,
)

FIPS = "/v2.0/floatingips"


@pytest.fixture(scope="module")
def controller(
    lab_prerequisites: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Controller]:
    """The controller on SQLite only: the floating IP API and its job on PostgreSQL are the API
    tests' (tests/api/test_floatingips.py); here the data path is what is proved."""
    work = tmp_path_factory.mktemp("controller")
    with database_url("sqlite", work) as url:
        yield from controller_on_site(url, work)


def external_network(ctl: Controller) -> str:
    networks = ctl.call("GET", "/v2.0/networks?name=ext-net")["networks"]
    assert len(networks) == 1 and networks[0]["router:external"] is True
    return str(networks[0]["id"])


def wait_status(ctl: Controller, fip_id: str, wanted: str, timeout: float = 60) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(ctl.call("GET", f"{FIPS}/{fip_id}")["floatingip"])
        assert found["status"] != "ERROR", found
        return found["status"] == wanted

    wait_until(reached, timeout, f"floating IP {fip_id} {wanted}")
    return found


def frontends(ctl: Controller, lb: dict[str, Any]) -> set[str]:
    return {a["frontend_ip"] for a in amphorae_of(ctl, lb["id"])}


def virtual_ip(ctl: Controller, lb: dict[str, Any]) -> dict[str, Any]:
    shown = ctl.call("GET", f"/v2/octavia/virtual-ips?load_balancer_id={lb['id']}")["virtual_ips"]
    assert len(shown) == 1, shown
    return dict(shown[0])


def test_associate_dissociate_and_move_to_another_load_balancer(
    controller: Controller, distributor: dict[str, Any], record_property: Any
) -> None:
    ctl = controller
    lb = create_web_lb(ctl, distributor, 3)
    other = create_web_lb(ctl, distributor, 2)
    wait_for_ecmp(ctl, lb, 3)
    wait_for_ecmp(ctl, other, 2)
    body = {"floating_network_id": external_network(ctl), "port_id": lb["vip_port_id"]}
    fip = ctl.call("POST", FIPS, {"floatingip": body}, expect=201)["floatingip"]
    address = fip["floating_ip_address"]
    prefix = host_prefix(address)
    assert fip["fixed_ip_address"] == lb["vip_address"]
    started = time.monotonic()
    wait_status(ctl, fip["id"], "ACTIVE")
    # Every amphora announces the floating IP with its own front end: 3-way ECMP at the ToR.
    wait_until(lambda: set(fabric.fib_nexthops(prefix)) == frontends(ctl, lb), 10,
               "the floating IP's ECMP set")  # fmt: skip
    record_property("associate_to_fib_s", round(time.monotonic() - started, 3))
    seen = traffic.run_clients(address, 90)
    assert seen["failures"] == 0, seen
    assert set(seen["per_amphora"]) == {a["id"] for a in amphorae_of(ctl, lb["id"])}, seen
    assert len(seen["per_member"]) == 2, seen  # both members served, as through the VIP
    shown = virtual_ip(ctl, lb)
    assert [f["floating_ip_address"] for f in shown["floating_ips"]] == [address]
    assert {i["ip_address"] for i in shown["interfaces"]} == frontends(ctl, lb)

    # Dissociate: withdrawn everywhere, the floating IP stops answering; the VIP serves on.
    started = time.monotonic()
    ctl.call("PUT", f"{FIPS}/{fip['id']}", {"floatingip": {"port_id": None}})
    wait_until(lambda: not fabric.fib_nexthops(prefix), 10, "the floating IP out of the FIB")
    record_property("dissociate_to_gone_s", round(time.monotonic() - started, 3))
    wait_status(ctl, fip["id"], "DOWN")
    assert traffic.run_clients(address, 4, timeout=1.0)["failures"] == 4
    assert traffic.run_clients(lb["vip_address"], 20)["failures"] == 0
    assert virtual_ip(ctl, lb)["floating_ips"] == []

    # Re-associate to another load balancer: it answers from that one's amphorae.
    update = {"port_id": other["vip_port_id"]}
    ctl.call("PUT", f"{FIPS}/{fip['id']}", {"floatingip": update})
    wait_status(ctl, fip["id"], "ACTIVE")
    wait_until(lambda: set(fabric.fib_nexthops(prefix)) == frontends(ctl, other), 10,
               "the floating IP on the other load balancer")  # fmt: skip
    seen = traffic.run_clients(address, 40)
    assert seen["failures"] == 0, seen
    assert set(seen["per_amphora"]) == {a["id"] for a in amphorae_of(ctl, other["id"])}, seen

    # Deleting the load balancer dissociates its floating IP (Neutron's port delete).
    delete_lb(ctl, other)
    wait_until(lambda: not fabric.fib_nexthops(prefix), 30, "withdrawn with its load balancer")
    shown_fip = wait_status(ctl, fip["id"], "DOWN")
    assert shown_fip["port_id"] is None and shown_fip["fixed_ip_address"] is None
    ctl.call("DELETE", f"{FIPS}/{fip['id']}", expect=204)
    delete_lb(ctl, lb)


def test_a_frozen_amphora_is_replaced_behind_the_floating_ip_without_touching_it(
    controller: Controller, distributor: dict[str, Any], record_property: Any
) -> None:
    ctl = controller
    db = Database(ctl.database_url)
    lb = create_web_lb(ctl, distributor, 3)
    wait_for_ecmp(ctl, lb, 3)
    body = {"floating_network_id": external_network(ctl), "port_id": lb["vip_port_id"]}
    fip = ctl.call("POST", FIPS, {"floatingip": body}, expect=201)["floatingip"]
    address, prefix = fip["floating_ip_address"], host_prefix(fip["floating_ip_address"])
    before = wait_status(ctl, fip["id"], "ACTIVE")
    wait_until(lambda: len(fabric.fib_nexthops(prefix)) == 3, 10, "3 next hops")

    def row() -> tuple[Any, ...]:
        with db.session(writer=False) as session:
            found = session.scalar(select(FloatingIp).where(FloatingIp.id == fip["id"]))
            assert found is not None
            return (found.port_id, found.fixed_ip_address, found.virtual_ip_id, found.status,
                    found.updated_at)  # fmt: skip

    stored = row()
    victim = amphorae_of(ctl, lb["id"])[0]
    frozen = ctl.site.host_of(victim)
    with ClientLoop(address) as clients:
        time.sleep(1)
        frozen_at = time.time()
        assert site.freeze(frozen) >= 3
        try:
            wait_until(lambda: victim["frontend_ip"] not in fabric.fib_nexthops(prefix), 5,
                       "the frozen amphora out of the floating IP's FIB entry")  # fmt: skip
            out_of_fib = time.time()

            def replaced() -> bool:
                shown = ctl.call("GET", lb_path(lb))["loadbalancer"]
                ids = {a["id"] for a in amphorae_of(ctl, lb["id"])}
                return victim["id"] not in ids and shown["provisioning_status"] == "ACTIVE"

            wait_until(replaced, 90, "old amphora deleted, load balancer ACTIVE")
            wait_until(lambda: set(fabric.fib_nexthops(prefix)) == frontends(ctl, lb), 15,
                       "the replacement in the floating IP's ECMP set")  # fmt: skip
            time.sleep(1)
            attempts = clients.stop()
        finally:
            site.thaw(frozen)
    record_property("fib_removal_s", round(out_of_fib - frozen_at, 3))
    # Requests fail only while BFD takes the frozen next hop out (sub-second), never after.
    assert failures(attempts, out_of_fib + 0.5) == 0
    # The floating IP itself never changed: the virtual-ip's interfaces did.
    assert row() == stored
    after = ctl.call("GET", f"{FIPS}/{fip['id']}")["floatingip"]
    assert after["updated_at"] == before["updated_at"] and after["status"] == "ACTIVE"
    interfaces = {i["amphora_id"] for i in virtual_ip(ctl, lb)["interfaces"]}
    assert interfaces == {a["id"] for a in amphorae_of(ctl, lb["id"])}
    assert victim["id"] not in interfaces
    assert traffic.run_clients(address, 30)["failures"] == 0
    ctl.call("DELETE", f"{FIPS}/{fip['id']}", expect=204)
    wait_until(lambda: not fabric.fib_nexthops(prefix), 15, "withdrawn when deleted")
    delete_lb(ctl, lb)


def test_long_lived_connections_to_the_floating_ip_survive_scale_drain_and_failover(
    controller: Controller, distributor: dict[str, Any], record_property: Any
) -> None:
    """300 long-lived connections and a client loop to the floating IP through a scale-out, a
    drain and a planned failover (flow rescue carries the floating IP's flows as the VIP's):
    none breaks, the ECMP set follows the amphorae, the floating IP's row never changes."""
    ctl = controller
    db = Database(ctl.database_url)
    lb = create_web_lb(ctl, distributor, 3)
    wait_for_ecmp(ctl, lb, 3)
    body = {"floating_network_id": external_network(ctl), "port_id": lb["vip_port_id"]}
    fip = ctl.call("POST", FIPS, {"floatingip": body}, expect=201)["floatingip"]
    address, prefix = fip["floating_ip_address"], host_prefix(fip["floating_ip_address"])
    wait_status(ctl, fip["id"], "ACTIVE")
    wait_until(lambda: len(fabric.fib_nexthops(prefix)) == 3, 10, "3 next hops")
    with db.session(writer=False) as session:
        stored = session.get(FloatingIp, fip["id"])
        assert stored is not None
        before = (stored.virtual_ip_id, stored.status, stored.updated_at)

    long_lived = start_long_lived(address, 300, 10)
    with ClientLoop(address) as clients:
        time.sleep(1)
        ctl.call("PUT", lb_path(lb), {"loadbalancer": {"amphora_count": 4}})
        ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
        wait_until(lambda: set(fabric.fib_nexthops(prefix)) == frontends(ctl, lb), 15,
                   "4 next hops for the floating IP")  # fmt: skip
        assert len(frontends(ctl, lb)) == 4
        drained = amphorae_of(ctl, lb["id"])[1]
        ctl.call("PUT", f"/v2/octavia/amphorae/{drained['id']}/drain", expect=202)
        wait_until(lambda: drained["frontend_ip"] not in fabric.fib_nexthops(prefix), 10,
                   "the drained amphora's floating IP route withdrawn")  # fmt: skip
        ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE", timeout=60)
        time.sleep(1)
        attempts = clients.stop()
    held = finish_clients(long_lived)
    record_property("broken_by_scale_and_drain", held["broken"])
    assert held["broken"] == 0, held
    assert failures(attempts, 0) == 0
    assert drained["id"] not in {a["id"] for a in amphorae_of(ctl, lb["id"])}

    long_lived = start_long_lived(address, 300, 8)
    old = amphorae_of(ctl, lb["id"])[0]
    with ClientLoop(address) as clients:
        time.sleep(1)
        ctl.call("PUT", f"/v2/octavia/amphorae/{old['id']}/failover", expect=202)
        ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE", timeout=90)
        wait_until(lambda: set(fabric.fib_nexthops(prefix)) == frontends(ctl, lb), 15,
                   "the replacement in the floating IP's ECMP set")  # fmt: skip
        time.sleep(1)
        attempts = clients.stop()
    held = finish_clients(long_lived)
    record_property("broken_by_failover", held["broken"])
    assert held["broken"] == 0, held
    assert failures(attempts, 0) == 0
    assert {a.detail for a in attempts if a.ok} >= {a["id"] for a in amphorae_of(ctl, lb["id"])}
    with db.session(writer=False) as session:
        stored = session.get(FloatingIp, fip["id"])
        assert stored is not None
        assert (stored.virtual_ip_id, stored.status, stored.updated_at) == before
    assert {i["amphora_id"] for i in virtual_ip(ctl, lb)["interfaces"]} == {
        a["id"] for a in amphorae_of(ctl, lb["id"])
    }
    ctl.call("DELETE", f"{FIPS}/{fip['id']}", expect=204)
    delete_lb(ctl, lb)
