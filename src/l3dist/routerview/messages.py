"""pmbmpd's message log (``bmp_daemon_msglog_output: json``, one object a line) as typed events.

Only what the router view needs is kept: a router's BMP session opening (``log_init`` or an
Initiation message, with sysName and sysDescr) and closing (``log_close``, Termination), peers
going up and down, statistics reports (which peer each is about), and route monitoring (an
update or a withdrawal of one prefix from one peer, pre- or post-policy). Anything else parses
to None.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RouterUp:
    router: str
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class RouterDown:
    router: str


@dataclass(frozen=True)
class PeerUp:
    router: str
    peer: str
    asn: int | None
    bgp_id: str | None


@dataclass(frozen=True)
class PeerDown:
    router: str
    peer: str


@dataclass(frozen=True)
class PeerStats:
    """A Statistics Report about one peer: the router sends them only for established
    sessions, so their absence tells a session is gone when the router sent no Peer Down
    (FRR 8.4 sends none for a dynamic neighbour it deletes)."""

    router: str
    peer: str


@dataclass(frozen=True)
class Route:
    """One prefix from one peer, as the router holds it before (``post`` False) or after its
    inbound policy; ``next_hop`` None is a withdrawal."""

    router: str
    peer: str
    prefix: str
    post: bool
    next_hop: str | None
    as_path: str | None
    arrived: datetime.datetime


Event = RouterUp | RouterDown | PeerUp | PeerDown | PeerStats | Route


def _time(text: Any) -> datetime.datetime:
    """pmacct's ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC), naive as the database keeps times."""
    try:
        return datetime.datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _address(text: Any) -> str:
    return str(ipaddress.ip_address(str(text)))


def parse(line: str) -> Event | None:
    """One message log line as an event; None for what the view does not use. Raises
    ValueError on a line that is not a JSON object or has malformed addresses."""
    message = json.loads(line)
    if not isinstance(message, dict) or "bmp_router" not in message:
        return None
    router = _address(message["bmp_router"])
    event_type = message.get("event_type")
    if event_type == "log_init":
        return RouterUp(router)
    if event_type == "log_close":
        return RouterDown(router)
    kind = message.get("bmp_msg_type")
    if kind == "init":
        return RouterUp(
            router, message.get("bmp_init_info_sysname"), message.get("bmp_init_info_sysdescr")
        )
    if kind == "term":
        return RouterDown(router)
    if kind == "peer_up":
        asn = message.get("peer_asn")
        bgp_id = message.get("bgp_id")
        return PeerUp(
            router,
            _address(message["peer_ip"]),
            int(asn) if asn is not None else None,
            _address(bgp_id) if bgp_id else None,
        )
    if kind == "peer_down":
        return PeerDown(router, _address(message["peer_ip"]))
    if kind == "stats" and "peer_ip" in message:
        return PeerStats(router, _address(message["peer_ip"]))
    if kind == "route_monitor" and "ip_prefix" in message:
        withdraw = message.get("log_type") == "withdraw"
        next_hop = message.get("bgp_nexthop")
        return Route(
            router=router,
            peer=_address(message["peer_ip"]),
            prefix=str(ipaddress.ip_network(str(message["ip_prefix"]), strict=False)),
            post=bool(message.get("is_post")),
            next_hop=None if withdraw or not next_hop else _address(next_hop),
            as_path=message.get("as_path"),
            arrived=_time(message.get("timestamp_arrival")),
        )
    return None
