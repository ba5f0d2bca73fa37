"""The network driver contract on the noop driver and on the lab's own networks (the static
driver's records with the lab's wiring, for its member servers and hand-made amphorae), and for
the lab's what the kernel shows: interfaces in the right namespaces with the right addresses,
MAC and MTU, and nothing left after unplug, even with 20 operations in parallel."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from l3dist.common import netlink
from l3dist.network import exceptions as nx
from l3dist.network.base import AbstractNetworkDriver
from l3dist.network.catalog import stable_id
from l3dist.network.noop import NoopNetworkDriver
from l3dist.network.static import OWNER_FRONTEND
from l3dist_lab import amphora, fabric, plumbing
from l3dist_lab.catalog import lab_catalog
from l3dist_lab.config import TOR_NS, LabConfig
from l3dist_lab.networks import LabNetworks, bridge_ifname, haproxy_namespace

CATALOG = lab_catalog()
MEMBER_NET = stable_id("member-net")
FRONTEND_NET = stable_id("frontend-net")
ANYCAST_V4 = CATALOG.subnet_by_name("anycast-net-v4")
FRONTEND_V4 = CATALOG.subnet_by_name("frontend-net-v4")
ANYCAST_V6 = CATALOG.subnet_by_name("anycast-net-v6")
FRONTEND_V6 = CATALOG.subnet_by_name("frontend-net-v6")


@dataclass
class Amp:
    id: str
    frontend_ip: str | None = None
    frontend_port_id: str | None = None
    frontend_subnet_id: str | None = None
    frontend_interface: str | None = None


@dataclass
class Vip:
    ip_address: str | None
    subnet_id: str
    frontend_subnet_id: str | None = None


@dataclass
class LB:
    vip: Vip
    amphorae: list[Amp] = field(default_factory=list)
    topology: str = "ACTIVE_ACTIVE"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Harness:
    driver: AbstractNetworkDriver
    new_amphora: Callable[[], Amp]
    kind: str


def global_addresses(ns: str, ifname: str) -> set[str]:
    """Addresses on an interface, without the kernel's own link-local one."""
    return {a.split("/")[0] for a in netlink.addresses(ns, ifname) if not a.startswith("fe80:")}


@pytest.fixture(params=["noop", "lab"])
def harness(request: pytest.FixtureRequest, lab: LabConfig) -> Iterator[Harness]:
    made: list[Amp] = []
    if request.param == "noop":
        noop = NoopNetworkDriver(CATALOG)

        def new_noop() -> Amp:
            amp = Amp(str(uuid.uuid4()))
            noop.add_amphora(amp.id)
            return amp

        yield Harness(noop, new_noop, "noop")
        return
    driver = fabric.network_driver()  # the lab's own: its networks were built by the fabric

    def new_lab() -> Amp:
        made.append(Amp(str(uuid.uuid4())))
        plumbing.create_namespace(haproxy_namespace(made[-1].id))
        return made[-1]

    try:
        yield Harness(driver, new_lab, "lab")
    finally:
        for amp in made:  # what a test left plugged on purpose (or by failing)
            for port in driver.ports_of(amp.id):
                driver.delete_port(port.id)
            plumbing.delete_namespace(haproxy_namespace(amp.id))


def test_lookups_and_not_found(harness: Harness) -> None:
    d = harness.driver
    network = d.get_network(MEMBER_NET)
    assert len(network.subnets) == 2
    assert d.get_subnet(network.subnets[0]).network_id == MEMBER_NET
    with pytest.raises(nx.NetworkNotFound):
        d.get_network("nope")
    with pytest.raises(nx.SubnetNotFound):
        d.get_subnet("nope")
    with pytest.raises(nx.PortNotFound):
        d.get_port("nope")


def test_plug_network_errors(harness: Harness) -> None:
    amp = harness.new_amphora()
    with pytest.raises(nx.NetworkNotFound):
        harness.driver.plug_network(amp.id, "no-such-network")
    with pytest.raises(nx.AmphoraNotFound):
        harness.driver.plug_network("no-such-amphora", MEMBER_NET)
    with pytest.raises(nx.UnplugNetworkException):
        harness.driver.unplug_network(amp.id, MEMBER_NET)
    assert harness.driver.get_plugged_networks(amp.id) == []


def test_plug_and_unplug_network(harness: Harness) -> None:
    d, amp = harness.driver, harness.new_amphora()
    interface = d.plug_network(amp.id, MEMBER_NET)
    assert {f.subnet_id for f in interface.fixed_ips} == set(d.get_network(MEMBER_NET).subnets)
    assert d.plug_network(amp.id, MEMBER_NET).id == interface.id  # idempotent
    port = d.get_port(interface.id)
    assert port.device_id == amp.id and port.device_owner == "compute:l3dist-amphora"
    assert [i.id for i in d.get_plugged_networks(amp.id)] == [interface.id]
    if harness.kind == "lab":
        ns = haproxy_namespace(amp.id)
        assert global_addresses(ns, "eth1") == {f.ip_address for f in interface.fixed_ips}
        assert plumbing.link_mac(ns, "eth1") == port.mac_address
        assert plumbing.link_exists(TOR_NS, bridge_ifname(port.id))
    d.unplug_network(amp.id, MEMBER_NET)
    assert d.get_plugged_networks(amp.id) == []
    with pytest.raises(nx.PortNotFound):
        d.get_port(interface.id)
    if harness.kind == "lab":
        assert not plumbing.link_exists(haproxy_namespace(amp.id), "eth1")
        assert not plumbing.link_exists(TOR_NS, bridge_ifname(interface.id))


def test_a_taken_address_is_refused(harness: Harness) -> None:
    d = harness.driver
    first, second = harness.new_amphora(), harness.new_amphora()
    interface = d.plug_network(first.id, MEMBER_NET, "198.18.3.150")
    assert [f.ip_address for f in interface.fixed_ips] == ["198.18.3.150"]
    with pytest.raises(nx.PlugNetworkException):
        d.plug_network(second.id, MEMBER_NET, "198.18.3.150")
    assert d.get_plugged_networks(second.id) == []


def test_allocate_and_deallocate_vip(harness: Harness) -> None:
    d = harness.driver
    lb = LB(Vip("198.18.100.200", ANYCAST_V4.id))
    vip = d.allocate_vip(lb)
    assert (vip.ip_address, vip.subnet_id) == ("198.18.100.200", ANYCAST_V4.id)
    with pytest.raises(nx.AllocateVIPException):
        d.allocate_vip(LB(Vip("198.18.100.200", ANYCAST_V4.id)))
    auto = d.allocate_vip(LB(Vip(None, ANYCAST_V4.id)))
    assert auto.ip_address != vip.ip_address
    d.deallocate_vip(vip)
    with pytest.raises(nx.VIPConfigurationNotFound):
        d.deallocate_vip(vip)


def test_plug_vip_active_active_puts_the_vip_on_loopback(harness: Harness) -> None:
    d = harness.driver
    amps = [harness.new_amphora(), harness.new_amphora()]
    lb = LB(Vip("198.18.100.201", ANYCAST_V4.id, FRONTEND_V4.id), amps)
    plugged = d.plug_vip(lb, lb.vip)
    assert len(plugged) == 2
    if harness.kind == "lab":
        for amp in amps:
            ns = haproxy_namespace(amp.id)
            assert amp.frontend_ip and FRONTEND_V4.contains(amp.frontend_ip)
            assert "198.18.100.201/32" in netlink.addresses(ns, "lo")
            assert f"{amp.frontend_ip}/24" in netlink.addresses(ns, "fe0")
            assert not any(a.startswith("198.18.100.201") for a in netlink.addresses(ns, "fe0"))
    d.unplug_vip(lb, lb.vip)
    with pytest.raises(nx.PluggedVIPNotFound):
        d.unplug_vip(lb, lb.vip)
    if harness.kind == "lab":
        for amp in amps:
            assert "198.18.100.201/32" not in netlink.addresses(haproxy_namespace(amp.id), "lo")
            assert d.get_plugged_networks(amp.id) == []


def test_plug_vip_ipv6_front_end_carries_both_families(harness: Harness) -> None:
    """An IPv6 VIP with an IPv6 front end: the next hop is IPv6, and the front-end port has an
    address on the IPv4 subnet too (members of either family are reached through it)."""
    d = harness.driver
    amp = harness.new_amphora()
    lb = LB(Vip("fd00:198:18:100::201", ANYCAST_V6.id, FRONTEND_V6.id), [amp])
    d.plug_vip(lb, lb.vip)
    if harness.kind == "lab":
        assert amp.frontend_ip and FRONTEND_V6.contains(amp.frontend_ip)
        assert amp.frontend_subnet_id == FRONTEND_V6.id
        port = d.get_port(amp.frontend_port_id or "")
        assert [f.subnet_id for f in port.fixed_ips] == [FRONTEND_V6.id, FRONTEND_V4.id]
        on_fe0 = {a.split("/")[0] for a in netlink.addresses(haproxy_namespace(amp.id), "fe0")}
        assert {f.ip_address for f in port.fixed_ips} <= on_fe0
    d.unplug_vip(lb, lb.vip)


def test_a_failed_plug_vip_leaves_nothing_behind(harness: Harness) -> None:
    d = harness.driver
    good, missing = harness.new_amphora(), Amp(str(uuid.uuid4()))
    lb = LB(Vip("198.18.100.202", ANYCAST_V4.id, FRONTEND_V4.id), [good, missing])
    with pytest.raises(nx.NetworkException):
        d.plug_vip(lb, lb.vip)
    if harness.kind == "lab":
        assert d.get_plugged_networks(good.id) == []
        assert not plumbing.link_exists(haproxy_namespace(good.id), "fe0")


def test_twenty_parallel_plugs_and_unplugs_leak_nothing(harness: Harness) -> None:
    d = harness.driver
    amps = [harness.new_amphora() for _ in range(20)]
    if not isinstance(d, LabNetworks):  # noop: the bookkeeping alone
        with ThreadPoolExecutor(20) as pool:
            interfaces = list(pool.map(lambda a: d.plug_network(a.id, MEMBER_NET), amps))
        addresses = [f.ip_address for i in interfaces for f in i.fixed_ips]
        assert len(addresses) == 40 and len(set(addresses)) == 40
        with ThreadPoolExecutor(20) as pool:
            list(pool.map(lambda a: d.unplug_network(a.id, MEMBER_NET), amps))
        assert all(d.get_plugged_networks(a.id) == [] for a in amps)
        return
    before_links = set(plumbing.link_names(TOR_NS))
    with ThreadPoolExecutor(20) as pool:
        interfaces = list(pool.map(lambda a: d.plug_network(a.id, MEMBER_NET), amps))
    addresses = [f.ip_address for i in interfaces for f in i.fixed_ips]
    assert len(addresses) == 40 and len(set(addresses)) == 40
    for amp, interface in zip(amps, interfaces, strict=True):
        got = global_addresses(haproxy_namespace(amp.id), "eth1")
        assert got == {f.ip_address for f in interface.fixed_ips}
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda a: d.unplug_network(a.id, MEMBER_NET), amps))
    assert set(plumbing.link_names(TOR_NS)) == before_links - {
        bridge_ifname(i.id) for i in interfaces
    }
    assert not any(bridge_ifname(i.id) in plumbing.link_names(TOR_NS) for i in interfaces)
    assert [a for a in d.allocations() if a[1].startswith("198.18.3.")] == []
    for amp in amps:
        assert not plumbing.link_exists(haproxy_namespace(amp.id), "eth1")


def plumbing_link_kind(ns: str, ifname: str) -> str:
    """The interface's kind as iproute2 prints it (`ip -d link`)."""
    return subprocess.run(["ip", "-n", ns, "-d", "link", "show", ifname], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip


def test_the_lab_is_built_through_the_driver(lab: LabConfig) -> None:
    """The fabric's networks are the lab's own networks: records, bridges with the gateways in
    the ToR. A lab amphora's front end is a reservation in them that its host's agent made
    real (fe0 with the port's MAC and addresses); its management link is the host's own."""
    d = fabric.network_driver()
    assert {n.name for n in d.networks.values()} == {
        "lb-mgmt-net",
        "frontend-net",
        "anycast-net",
        "member-net",
        "ext-net",  # the floating IP pool: no bridge, routes only
    }
    for bridge, gateway in (("br-mgmt", "198.18.0.1"), ("br-fe", "198.18.1.1")):
        assert f"{gateway}/24" in netlink.addresses(TOR_NS, bridge)
    assert "198.18.3.1/24" in netlink.addresses(TOR_NS, "br-member")
    amp = amphora.create(lab)
    try:
        ports = d.ports_of(amp.id)
        assert [p.device_owner for p in ports] == [OWNER_FRONTEND]
        frontend = ports[0]
        # A reservation the agent made real: fe0, a macvlan off the host's eth1.
        assert "macvlan" in plumbing_link_kind(amp.haproxy_ns, "fe0")
        assert {f.ip_address for f in frontend.fixed_ips} == {amp.frontend_ip4, amp.frontend_ip6}
        assert global_addresses(amp.mgmt_ns, "mgmt0") == {amp.mgmt_ip4, amp.mgmt_ip6}
        assert global_addresses(amp.haproxy_ns, "fe0") == {amp.frontend_ip4, amp.frontend_ip6}
        assert plumbing.link_mac(amp.haproxy_ns, "fe0") == frontend.mac_address
    finally:
        amphora.delete(amp.id)
    assert d.ports_of(amp.id) == []
    assert not any(a[1] == amp.frontend_ip4 for a in d.allocations())
    assert amp.mgmt_ns not in plumbing.list_namespaces()
    assert amp.haproxy_ns not in plumbing.list_namespaces()
