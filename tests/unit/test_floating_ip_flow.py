"""The floating IP job's shape (no daemon, no database), and HAProxy binding every address of
a load balancer: unbound floating IPs are withdrawn before HAProxy stops binding them, bound
ones are bound by HAProxy before the registered amphorae announce them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from l3dist.controller import flows, haproxy_config
from l3dist.db import jobs
from l3dist.distributor.l3_bgp import L3BgpDistributorDriver
from tests.unit.test_distributor_flow import atom_names


def build(add: list[str], remove: list[str], amphorae: list[str], registered: list[str]) -> Any:
    driver = L3BgpDistributorDriver()
    services = SimpleNamespace(distributor=driver)
    driver.bind(services)  # type: ignore[arg-type]
    arguments = {"add": add, "remove": remove,
                 "plan": {"amphorae": amphorae, "registered": registered}}  # fmt: skip
    return flows.build(services, jobs.UPDATE_FLOATING_IPS, "lb-1", arguments)  # type: ignore[arg-type]


HEAD = ["floating-ips-error-on-revert", "floating-ips-amphorae"]
HAPROXY = ["floating-ips-haproxy"]


def test_binding_configures_haproxy_then_registers_the_registered_amphorae_again() -> None:
    assert atom_names(build(["198.19.100.100"], [], ["a1", "a2"], ["a1", "a2"])) == [
        *HEAD, *HAPROXY, "floating-ips-announce-ids", "register-amphorae-fip", "floating-ips-mark",
    ]  # fmt: skip


def test_binding_with_no_listener_announces_nothing_yet() -> None:
    # Registration (with every address) waits for a listener, as the VIP's does.
    assert atom_names(build(["198.19.100.100"], [], ["a1"], [])) == [
        *HEAD, *HAPROXY, "floating-ips-mark",
    ]  # fmt: skip


def test_unbinding_withdraws_on_every_amphora_before_haproxy_lets_go() -> None:
    assert atom_names(build([], ["198.19.100.100"], ["a1", "a2"], ["a1"])) == [
        *HEAD, "unregister-addresses-floating-ips", *HAPROXY, "floating-ips-mark",
    ]  # fmt: skip


def _lb() -> Any:
    listener = SimpleNamespace(
        id="l1", protocol="HTTP", protocol_port=80, enabled=True, provisioning_status="ACTIVE",
        connection_limit=None, timeout_client_data=None, allowed_cidrs=[], default_pool=None,
    )  # fmt: skip
    return SimpleNamespace(vip=SimpleNamespace(ip_address="198.18.100.10"), listeners=[listener])


def test_every_listener_binds_the_vip_and_each_floating_ip() -> None:
    text = haproxy_config.render(_lb(), ["198.18.100.10", "198.19.100.100"])
    assert "    bind 198.18.100.10:80\n    bind 198.19.100.100:80\n" in text
    assert text.count("    bind ") == 2
    alone = haproxy_config.render(_lb())
    assert alone.count("    bind ") == 1 and "    bind 198.18.100.10:80\n" in alone


def test_the_addresses_are_inputs_of_the_job_not_atoms() -> None:
    inputs = flows.store("lb-1", "job-1", jobs.UPDATE_FLOATING_IPS,
                         {"add": ["198.19.100.7"], "remove": ["198.19.100.9"]})  # fmt: skip
    assert inputs == {"loadbalancer_id": "lb-1", "job_id": "job-1", "add": ["198.19.100.7"],
                      "remove": ["198.19.100.9"], "addresses": ["198.19.100.9"]}  # fmt: skip
    assert flows.store("lb-1", "job-1", jobs.APPLY_LOAD_BALANCER, {"plan": {}}) == {
        "loadbalancer_id": "lb-1", "job_id": "job-1"
    }  # fmt: skip
