"""The lab's own networks: what the site's cabling and its Neutron are for the lab's machines
(the ToR's bridges, the member servers, amphorae made by hand for the agent's own tests).

Built on the core ``static`` driver for the records (networks, subnets, IPAM in the lab's own
database, never the controller's), with its hooks filled in to make the ports real: a network
is a bridge in the ToR's namespace, a port a veth pair from the bridge into a namespace. The
controller never loads this (it is no entry point): on the lab, as on a real site, it runs the
``static`` driver on networks the operator defines through its API, and the agents on the
hosts make what is inside a host.

A hand-made amphora's ports go into its amphora-haproxy namespace (``l3d-amp-<id8>-hap``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from l3dist.common import netlink
from l3dist.db.session import Database
from l3dist.network.catalog import stable_id
from l3dist.network.exceptions import AmphoraNotFound, PlugNetworkException
from l3dist.network.models import Network, Port
from l3dist.network.static import FIRST_HOST_INDEX, StaticNetworkDriver, Wiring
from l3dist_lab import plumbing
from l3dist_lab.config import BRIDGE_MACS, TOR_NS, LabConfig, LabNetwork


def haproxy_namespace(compute_id: str) -> str:
    return f"l3d-amp-{compute_id.replace('-', '')[:8]}-hap"


def bridge_ifname(port_id: str) -> str:
    return "p" + port_id.replace("-", "")[:12]


class LabNetworks(StaticNetworkDriver):
    def __init__(self, db: Database, tor_namespace: str = TOR_NS) -> None:
        super().__init__(db)
        self.tor = tor_namespace

    def ensure_network(
        self,
        name: str,
        bridge: str | None,
        subnets: list[dict[str, Any]],
        mtu: int = 1500,
        network_id: str | None = None,
        bridge_mac: str | None = None,
        router_external: bool = False,
    ) -> Network:
        """Create (or find) a network: its subnets for IPAM and, for a network with a bridge,
        the bridge in the fabric with each subnet's gateway address on it (the ToR routes)."""
        network = self.register_network(name, bridge, subnets, mtu, network_id, router_external)
        if bridge:
            plumbing.add_bridge(self.tor, bridge, bridge_mac)
            for subnet_id in network.subnets:
                subnet = self.get_subnet(subnet_id)
                if subnet.gateway_ip:
                    prefixlen = ipaddress.ip_network(subnet.cidr).prefixlen
                    netlink.add_address(self.tor, bridge, f"{subnet.gateway_ip}/{prefixlen}")
        return network

    # -- the static driver's hooks: the lab's kernel side --------------------------------------

    def namespace_of(self, compute_id: str) -> str:
        return haproxy_namespace(compute_id)

    def _namespace_exists(self, namespace: str) -> bool:
        return namespace in plumbing.list_namespaces()

    def _wire_port(
        self, port: Port, wiring: Wiring, namespace: str, ifname: str, default_routes: bool
    ) -> None:
        if wiring.bridge is None:
            raise PlugNetworkException(f"network {port.network_id} has no bridge")
        if not self._namespace_exists(namespace):
            raise AmphoraNotFound(f"namespace {namespace} does not exist")
        plumbing.add_veth(
            self.tor,
            bridge_ifname(port.id),
            namespace,
            ifname,
            master=wiring.bridge,
            mtu=wiring.mtu,
            peer_mac=port.mac_address,
        )
        for fixed in port.fixed_ips:
            prefixlen, gateway = wiring.prefixes[fixed.subnet_id]
            netlink.add_address(namespace, ifname, f"{fixed.ip_address}/{prefixlen}")
            if default_routes and gateway:
                plumbing.add_default_route(namespace, gateway)

    def _unwire_port(self, port_id: str) -> None:
        plumbing.delete_link(self.tor, bridge_ifname(port_id))

    def _put_vip(self, namespace: str, address: str, active_active: bool, prefixlen: int) -> None:
        """On loopback in the amphora-haproxy namespace for ACTIVE_ACTIVE (the fabric routes
        the VIP to the front-end IP; no ARP for it), on the front-end port otherwise."""
        if active_active:
            netlink.set_sysctls(namespace, netlink.VIP_ON_LOOPBACK_SYSCTLS)
            netlink.add_address(namespace, "lo", f"{address}/{prefixlen}")
        else:
            netlink.add_address(namespace, "fe0", f"{address}/{prefixlen}")

    def _remove_vip(self, namespace: str, address: str) -> bool:
        found = False
        for ifname in ("lo", "fe0"):
            for present in netlink.addresses(namespace, ifname):
                if present.split("/")[0] == address:
                    found = True
                    netlink.delete_address(namespace, ifname, present)
        return found


def _subnet_specs(net: LabNetwork) -> list[dict[str, Any]]:
    return [
        {
            "id": stable_id(f"{net.name}-v{v}"),
            "name": f"{net.name}-v{v}",
            "cidr": str(cidr),
            "gateway_ip": str(cidr[1]) if net.routed else None,
            "first_host_index": FIRST_HOST_INDEX,
            "role": net.role,
        }
        for v, cidr in net.subnets()
    ]


def register_lab_networks(driver: StaticNetworkDriver, cfg: LabConfig | None = None) -> None:
    """The lab's networks in the driver's database only (API tests, no kernel), with the ids
    the catalog gives them."""
    for net in (cfg or LabConfig()).networks():
        driver.register_network(
            net.name,
            net.bridge,
            _subnet_specs(net),
            network_id=stable_id(net.name),
            router_external=net.external,
        )


def build_lab_networks(driver: LabNetworks, cfg: LabConfig) -> None:
    """The lab's networks, made through the driver: database rows and bridges in the ToR."""
    for net in cfg.networks():
        driver.ensure_network(
            net.name,
            net.bridge,
            _subnet_specs(net),
            network_id=stable_id(net.name),
            bridge_mac=BRIDGE_MACS.get(net.bridge or ""),
            router_external=net.external,
        )
