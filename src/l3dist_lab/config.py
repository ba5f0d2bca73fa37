"""The lab's fixed addressing plan and names.

Addresses come from 198.18.0.0/15 (RFC 2544, reserved for network benchmarking) and a ULA prefix,
so the lab never collides with real networks. Every name starts with ``l3d-`` so teardown can find
what the lab made even when its state file is lost.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "l3d-"
TOR_NS = "l3d-tor"
CLIENT_NS = "l3d-client"
HOST_MGMT_IF = "l3d-mgmt"
STATE_DIR = Path("/run/l3dist/lab")
FRR_CONF_DIR = Path("/etc/frr") / TOR_NS
FRR_RUN_DIR = Path("/var/run/frr") / TOR_NS

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
ANYCAST_V4 = ipaddress.IPv4Network("198.18.100.0/24")
ANYCAST_V6 = ipaddress.IPv6Network("fd00:198:18:100::/64")
MEMBER_V4 = ipaddress.IPv4Network("198.18.3.0/24")
MEMBER_V6 = ipaddress.IPv6Network("fd00:198:18:3::/64")
# The floating IP pool (an external network, as Neutron's public network): its addresses, like
# the anycast VIPs, live on amphora loopbacks and in the router's routes only.
FLOATING_V4 = ipaddress.IPv4Network("198.19.100.0/24")
FLOATING_V6 = ipaddress.IPv6Network("fd00:198:19:100::/64")
ANYCAST_NET = "anycast-net"
EXTERNAL_NET = "ext-net"
MEMBER_NET = "member-net"
MEMBER_BRIDGE = "br-member"
# The ToR's bridge MACs, pinned so they do not change as ports come and go (flow rescue's
# router MACs name the front end's).
BRIDGE_MACS = {
    "br-mgmt": "02:1d:00:00:00:01",
    "br-fe": "02:1d:00:00:01:01",
    MEMBER_BRIDGE: "02:1d:00:00:03:01",
}


@dataclass(frozen=True)
class DualStackNet:
    """One lab network with an IPv4 and an IPv6 subnet; the ToR holds the first address."""

    name: str
    bridge: str
    v4: ipaddress.IPv4Network
    v6: ipaddress.IPv6Network

    def gateway(self, version: int) -> str:
        return str(self.subnet(version)[1])

    def subnet(self, version: int) -> IPNet:
        return self.v4 if version == 4 else self.v6

    def host(self, version: int, index: int) -> str:
        return str(self.subnet(version)[index])


@dataclass(frozen=True)
class LabNetwork:
    """A network of the lab as the operator defines it: name, bridge in the ToR (None: not on
    a link), IPv4 and IPv6 subnets, routed (the ToR holds each subnet's first address, the
    gateway) and the subnets' role (l3dist.network.models.SUBNET_ROLES)."""

    name: str
    bridge: str | None
    v4: ipaddress.IPv4Network
    v6: ipaddress.IPv6Network
    routed: bool
    role: str

    @property
    def external(self) -> bool:
        """A floating IP network (Neutron's ``router:external``)."""
        return self.role == "external"

    def subnets(self) -> list[tuple[int, IPNet]]:
        return [(4, self.v4), (6, self.v6)]


@dataclass(frozen=True)
class LabConfig:
    """The lab fabric: ToR AS, networks, and the amphora address range."""

    tor_asn: int = 65000
    amphora_asn: int = 64512
    mgmt: DualStackNet = field(
        default_factory=lambda: DualStackNet(
            "lb-mgmt-net",
            "br-mgmt",
            ipaddress.IPv4Network("198.18.0.0/24"),
            ipaddress.IPv6Network("fd00:198:18::/64"),
        )
    )
    frontend: DualStackNet = field(
        default_factory=lambda: DualStackNet(
            "frontend-net",
            "br-fe",
            ipaddress.IPv4Network("198.18.1.0/24"),
            ipaddress.IPv6Network("fd00:198:18:1::/64"),
        )
    )
    client: DualStackNet = field(
        default_factory=lambda: DualStackNet(
            "client-net",
            "tor-client",
            ipaddress.IPv4Network("198.18.2.0/24"),
            ipaddress.IPv6Network("fd00:198:18:2::/64"),
        )
    )
    anycast_v4: ipaddress.IPv4Network = ANYCAST_V4
    anycast_v6: ipaddress.IPv6Network = ANYCAST_V6
    member_v4: ipaddress.IPv4Network = MEMBER_V4
    member_v6: ipaddress.IPv6Network = MEMBER_V6
    floating_v4: ipaddress.IPv4Network = FLOATING_V4
    floating_v6: ipaddress.IPv6Network = FLOATING_V6
    controller_host_index: int = 254
    bgp_password: str | None = None
    keepalive: int = 1
    hold_time: int = 3
    bfd_interval_ms: int = 100
    bfd_multiplier: int = 3
    # The ToR's cap on routes one amphora session may send (route safety: a speaker that
    # floods routes loses its session instead of filling the router's tables).
    max_prefixes: int = 200
    # Where the ToR streams BMP: the controller's router view (``l3dist routerview``) on its
    # management address.
    bmp_port: int = 11019

    def anycast(self, version: int) -> IPNet:
        return self.anycast_v4 if version == 4 else self.anycast_v6

    def vip(self, version: int, index: int = 10) -> str:
        return str(self.anycast(version)[index])

    def networks(self) -> list[LabNetwork]:
        """The networks the network driver serves. The anycast network has no bridge: its
        addresses live on loopbacks and in routes only."""
        return [
            LabNetwork(
                self.mgmt.name, self.mgmt.bridge, self.mgmt.v4, self.mgmt.v6, True, "management"
            ),
            LabNetwork(
                self.frontend.name,
                self.frontend.bridge,
                self.frontend.v4,
                self.frontend.v6,
                True,
                "frontend",
            ),
            LabNetwork(ANYCAST_NET, None, self.anycast_v4, self.anycast_v6, False, "anycast"),
            LabNetwork(MEMBER_NET, MEMBER_BRIDGE, self.member_v4, self.member_v6, True, "member"),
            LabNetwork(EXTERNAL_NET, None, self.floating_v4, self.floating_v6, False, "external"),
        ]
