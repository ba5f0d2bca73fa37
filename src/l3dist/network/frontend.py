"""What an amphora host's agent is told about its front-end port (``PUT /1.0/plug/frontend``).

A port is a reservation in the network driver (address, MAC, the network's MTU); the agent on
the host makes it real. This turns the driver's records into the wire contract, in one place
for the controller's task and for anything else that plugs a front end through an agent.
"""

from __future__ import annotations

import ipaddress

from l3dist.contracts.agent_api import FrontendPlug
from l3dist.network.base import AbstractNetworkDriver


def frontend_plug(network: AbstractNetworkDriver, port_id: str) -> FrontendPlug:
    """The port's MAC, its network's MTU, each fixed IP with its subnet's prefix length (the
    first: the next hop) and each subnet's gateway (a default route to it)."""
    port = network.get_port(port_id)
    net = network.get_network(port.network_id)
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
    gateways: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for fixed in port.fixed_ips:
        subnet = network.get_subnet(fixed.subnet_id)
        prefixlen = ipaddress.ip_network(subnet.cidr).prefixlen
        addresses.append(ipaddress.ip_interface(f"{fixed.ip_address}/{prefixlen}"))
        if subnet.gateway_ip:
            gateways.append(ipaddress.ip_address(subnet.gateway_ip))
    if port.mac_address is None:
        raise ValueError(f"port {port_id} has no MAC address")
    return FrontendPlug(
        mac_address=port.mac_address, mtu=net.mtu, addresses=addresses, gateways=gateways
    )
