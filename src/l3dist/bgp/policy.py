"""Route safety (issue 14): what an amphora may announce at all.

An amphora announces host routes (/32, /128) of anycast VIPs and nothing else: never a default
route, an aggregate, an address of another network or an address that is never a host to route
to. The pools it may announce inside (``AgentConfig.anycast_prefixes``) come from the operator's
network definitions through the config drive. One rule, three users: the agent's API refuses a
VIP outside them (403), the speaker drivers' own export policy repeats it (BIRD's export filter,
ExaBGP's check where the announce command is written), and the operator's router applies it once
more (its inbound prefix-list). Pure functions, no I/O, so every layer tests the same rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from l3dist.contracts.agent_config import IPAddress, IPNetwork


def never_routed(address: IPAddress) -> str | None:
    """Why an address is never a host route to announce (None: it may be one)."""
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    return None


def refusal(vip: str | IPAddress, prefixes: Iterable[IPNetwork]) -> str | None:
    """Why the VIP's host route may not be announced by an amphora allowed ``prefixes``, as a
    sentence naming ``vip_ip``; None when it may. An amphora with no prefixes announces
    nothing."""
    address = ipaddress.ip_address(vip)
    kind = never_routed(address)
    if kind is not None:
        return f"vip_ip {address} is {kind}, never a host route to announce"
    pools = list(prefixes)
    if not pools:
        return (
            f"vip_ip {address} refused: this amphora has no anycast prefixes configured, "
            "so it announces nothing"
        )
    if not any(address.version == p.version and address in p for p in pools):
        allowed = ", ".join(str(p) for p in pools)
        return f"vip_ip {address} is not inside this amphora's anycast prefixes ({allowed})"
    return None


def exportable(prefix: str, prefixes: Iterable[IPNetwork]) -> bool:
    """May a speaker send this route? Only a host route (/32, /128) that ``refusal`` allows."""
    try:
        net = ipaddress.ip_network(prefix)
    except ValueError:
        return False
    if net.prefixlen != net.max_prefixlen:
        return False
    return refusal(net.network_address, prefixes) is None


def by_version(prefixes: Iterable[IPNetwork], version: int) -> list[IPNetwork]:
    """The prefixes of one IP version, sorted (generated policy text is stable)."""
    return sorted(p for p in prefixes if p.version == version)
