"""The network driver's data models, as in the spec (plus the L3 active-active front end)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

# What a subnet is for (set by the operator, admin only). An ACTIVE_ACTIVE load balancer's VIP
# comes only from an anycast pool and its front end only from a front-end subnet; amphorae
# announce host routes inside the anycast pools and nothing else.
ROLE_ANYCAST = "anycast"  # anycast VIP pool: addresses live on loopbacks and in routes only
ROLE_FRONTEND = "frontend"  # provider network the fabric routes VIPs to (the next hops)
ROLE_MANAGEMENT = "management"  # lb-mgmt-net: agents, BGP sessions, heartbeats
ROLE_MEMBER = "member"  # tenant networks where members live
ROLE_EXTERNAL = "external"  # floating-IP pool
SUBNET_ROLES = (ROLE_ANYCAST, ROLE_FRONTEND, ROLE_MANAGEMENT, ROLE_MEMBER, ROLE_EXTERNAL)


@dataclass
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclass
class Network:
    id: str
    name: str | None = None
    subnets: list[str] = field(default_factory=list)
    tenant_id: str | None = None
    admin_state_up: bool = True
    provider_network_type: str | None = None
    provider_physical_network: str | None = None
    provider_segmentation_id: int | None = None
    router_external: bool = False
    mtu: int = 1500


@dataclass
class Subnet:
    id: str
    name: str | None
    network_id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None = None
    tenant_id: str | None = None
    role: str = ROLE_MEMBER  # one of SUBNET_ROLES

    def contains(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return ip.version == self.ip_version and ip in ipaddress.ip_network(self.cidr)


@dataclass
class Port:
    id: str
    network_id: str
    name: str | None = None
    device_id: str | None = None
    device_owner: str | None = None
    mac_address: str | None = None
    status: str | None = None
    tenant_id: str | None = None
    admin_state_up: bool = True
    fixed_ips: list[FixedIP] = field(default_factory=list)

    def address(self, version: int) -> str:
        """The port's address of an IP version (StopIteration if it has none)."""
        return next(
            f.ip_address
            for f in self.fixed_ips
            if ipaddress.ip_address(f.ip_address).version == version
        )


@dataclass
class Interface:
    id: str
    network_id: str
    amphora_id: str
    fixed_ips: list[FixedIP] = field(default_factory=list)


@dataclass
class Delta:
    amphora_id: str
    compute_id: str
    add_nics: list[Interface] = field(default_factory=list)
    delete_nics: list[Interface] = field(default_factory=list)


@dataclass
class AmphoraNetworkConfig:
    """The spec's model, with the front-end (provider) subnet and port that replace vrrp_*."""

    amphora: Any
    vip_subnet: Subnet | None = None
    vip_port: Port | None = None
    frontend_subnet: Subnet | None = None
    frontend_port: Port | None = None
    ha_subnet: Subnet | None = None
    ha_port: Port | None = None


@dataclass
class VipInfo:
    """The VIP the driver allocates (Octavia's VIP data model, the fields the driver fills)."""

    load_balancer_id: str
    ip_address: str
    subnet_id: str
    network_id: str
    port_id: str
