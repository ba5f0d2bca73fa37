"""The network driver's subnets by role, for whoever must keep an address inside (or outside)
the operator's pools: the worker (the anycast prefixes an amphora may announce in) and the API
(a VIP route's vip_ip in an anycast pool, its next hop on a front-end subnet). One definition,
so both read the pools the same way."""

from __future__ import annotations

import ipaddress
from typing import Protocol

from l3dist.contracts.agent_config import IPNetwork
from l3dist.network.models import ROLE_ANYCAST, ROLE_EXTERNAL, Network, Subnet


class SubnetSource(Protocol):
    """What is read of a network driver: its networks and their subnets."""

    @property
    def networks(self) -> dict[str, Network]: ...

    def get_subnet(self, subnet_id: str) -> Subnet: ...


def subnets_with_role(source: SubnetSource, role: str) -> list[Subnet]:
    """Every subnet the driver knows with the role, by name (then id): a stable order."""
    found = [
        subnet
        for network in source.networks.values()
        for subnet in (source.get_subnet(s) for s in network.subnets)
        if subnet.role == role
    ]
    return sorted(found, key=lambda s: (s.name or "", s.id))


def subnet_holding(source: SubnetSource, role: str, address: str) -> Subnet | None:
    """The subnet with the role that contains the address, or None."""
    return next((s for s in subnets_with_role(source, role) if s.contains(address)), None)


def anycast_prefixes(source: SubnetSource) -> list[IPNetwork]:
    """The CIDRs of every subnet with the anycast role: the only pools an amphora may announce
    host routes inside (route safety). They come from the operator's network definitions,
    never from an API caller; sorted, so every amphora of a cluster gets the same list."""
    prefixes = {ipaddress.ip_network(s.cidr) for s in subnets_with_role(source, ROLE_ANYCAST)}
    return sorted(prefixes, key=lambda p: (p.version, p))


def announceable_prefixes(source: SubnetSource) -> list[IPNetwork]:
    """What an amphora may announce host routes inside: the anycast pools (VIPs) and the
    external pools (floating IPs, bound to a load balancer's virtual-ip and announced by its
    amphorae like its VIP). Written into each amphora's config drive when it is built."""
    prefixes = set(anycast_prefixes(source))
    prefixes |= {ipaddress.ip_network(s.cidr) for s in subnets_with_role(source, ROLE_EXTERNAL)}
    return sorted(prefixes, key=lambda p: (p.version, p))
