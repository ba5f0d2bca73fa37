"""The BGP speaker driver interface used by the amphora agent.

A driver turns a desired set of routes (VIP prefix, next hop, peer) into announcements by a real
BGP daemon. The agent always hands over the complete desired set; the driver announces what is new
and withdraws what is gone. Every amphora must send identical path attributes (origin IGP, no MED,
AS path of its local AS only) or the fabric picks one best path instead of multipath.
"""

from __future__ import annotations

import functools
import ipaddress
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from l3dist.bgp import policy
from l3dist.common import plugins
from l3dist.common.process import ManagedProcess
from l3dist.contracts.agent_config import BgpConfig, BgpPeerProfile, IPNetwork


@dataclass(frozen=True, order=True)
class Route:
    """One announcement: VIP host prefix with a next hop, to one peer."""

    prefix: str
    nexthop: str
    peer_id: str
    # With next-hop BFD (a dedicated distributor): announced only while the next hop answers
    # it. A Register VIP endpoint (a UDP server, say) runs no BFD: its routes are not watched.
    watched: bool = True

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.prefix).version


@dataclass(frozen=True)
class PeerStatus:
    peer_id: str
    peer_ip: str
    remote_as: int
    state: str
    established: bool
    last_error: str | None = None
    bfd_state: str | None = None  # None: BFD not enabled for this peer
    # ADD-PATH send on this session: None when not offered, else whether the peer took it
    # (False: the session carries one next hop per VIP, the spec's model).
    add_path: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=65536)
def host_prefix(ip: str) -> str:
    """The host route of an address (``198.18.100.10/32``). Cached: the agent builds every
    route of every registration at each change, and parsing an address is most of that cost
    (22 ms for 750 routes uncached)."""
    address = ipaddress.ip_address(ip)
    return f"{address}/{address.max_prefixlen}"


class RouteRefused(ValueError):
    """A route outside the amphora's anycast prefixes (or not a host route) reached a driver."""


class SpeakerDriver(ABC):
    """A supervised BGP daemon announcing VIP routes.

    Invariant (route safety): whatever routes it is handed, a driver makes its daemon send only
    host routes inside ``anycast_prefixes`` (``policy.exportable``), enforced by the daemon's
    own policy where it has one (BIRD's export filter) or where the driver writes the announce
    (ExaBGP). The agent checks first; this is the layer that holds when the agent is wrong.
    """

    name: str = "abstract"

    def __init__(
        self,
        bgp: BgpConfig,
        local_addresses: dict[int, str],
        workdir: Path,
        *,
        anycast_prefixes: list[IPNetwork],
    ) -> None:
        self.bgp = bgp
        self.local_addresses = local_addresses
        self.workdir = workdir
        self.anycast_prefixes = sorted(
            set(anycast_prefixes), key=lambda p: (p.version, int(p.network_address), p.prefixlen)
        )
        self.routes: frozenset[Route] = frozenset()

    def exportable(self, route: Route) -> bool:
        return policy.exportable(route.prefix, self.anycast_prefixes)

    def local_address(self, peer: BgpPeerProfile) -> str:
        try:
            return self.local_addresses[peer.ip_version]
        except KeyError:
            raise ValueError(
                f"peer {peer.id} is IPv{peer.ip_version} but the management interface has no "
                f"IPv{peer.ip_version} address"
            ) from None

    def local_as(self, peer: BgpPeerProfile) -> int:
        for speaker, candidate in self.bgp.peers():
            if candidate.id == peer.id:
                return speaker.local_as
        raise KeyError(peer.id)

    @abstractmethod
    def processes(self) -> list[ManagedProcess]:
        """The daemons to supervise."""

    @abstractmethod
    def start(self, routes: frozenset[Route]) -> None:
        """Start the daemon announcing routes."""

    @abstractmethod
    def apply(self, routes: frozenset[Route]) -> None:
        """Make the announced set equal to routes (announce new, withdraw gone)."""

    @abstractmethod
    def restarted(self) -> None:
        """Called by the supervisor after it restarted a daemon: re-announce everything."""

    @abstractmethod
    def peer_status(self) -> list[PeerStatus]:
        """Session state per configured peer, as the daemon reports it."""

    def stop(self) -> None:
        for proc in self.processes():
            proc.stop()


def make_driver(
    bgp: BgpConfig,
    local_addresses: dict[int, str],
    workdir: Path,
    anycast_prefixes: list[IPNetwork],
) -> SpeakerDriver:
    """The driver the config drive names, from the ``l3dist.speaker_drivers`` entry points.

    The anycast prefixes go to the factory as a required keyword (not inside ``BgpConfig``):
    they are the amphora's, one field of the config drive that the agent's own check reads too,
    so there is one copy that cannot disagree with itself; and a driver that does not know the
    limit fails to load instead of announcing without it."""
    factory = plugins.load(plugins.SPEAKER, bgp.driver, "BGP speaker driver")
    driver: SpeakerDriver = factory(
        bgp, local_addresses, workdir, anycast_prefixes=list(anycast_prefixes)
    )
    return driver
