"""A load-balancing amphora's side of the dedicated distributors' next-hop BFD.

In dedicated mode the distributor amphorae announce this amphora's front end only while a BFD
session to it is Up (their BIRD's static routes with ``bfd``, or their ExaBGP's BFD watch), so
this amphora runs BFD on its front end for them: a BIRD with BFD only, in the amphora-haproxy
namespace, one neighbour per distributor. It holds no BGP session and no fabric credentials
(the spec's security point). A frozen or dead amphora stops answering by itself; while the
listener check says the listeners are down the agent stops answering on purpose (the
neighbours leave the configuration), so a soft failure withdraws the paths too, within the
distributors' detect time.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from l3dist.bgp.bird_bfd import BfdOnlyBird, Neighbor
from l3dist.contracts.agent_config import NexthopBfd

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class BfdResponder:
    def __init__(self, namespace: str, ifname: str, workdir: Path, router_id: str) -> None:
        self.bird = BfdOnlyBird("bird-bfd", workdir, router_id, namespace, ifname)
        self.process = self.bird.process
        self.peers: list[IPAddress] = []
        self.timers = NexthopBfd()
        self.answering = True

    def _neighbors(self, local: list[IPInterface]) -> list[Neighbor]:
        """A neighbour per distributor of a family the front end has, from the front end's own
        address; none while not answering."""
        if not self.answering:
            return []
        neighbors = []
        for peer in self.peers:
            source = next((a.ip for a in local if a.version == peer.version), None)
            if source is not None:
                neighbors.append(Neighbor(str(peer), str(source)))
        return neighbors

    def set_peers(
        self, peers: list[IPAddress], timers: NexthopBfd, local: list[IPInterface]
    ) -> None:
        """Answer these distributors (none: stop the daemon)."""
        self.peers, self.timers = list(peers), timers
        self.bird.apply(self._neighbors(local), timers, run=bool(self.peers))

    def set_answering(self, answering: bool, local: list[IPInterface]) -> None:
        """The listener check's verdict: answer while the listeners serve. Not answering keeps
        BIRD running with no neighbour (its sessions end at once: AdminDown, or silence)."""
        if answering == self.answering:
            return
        self.answering = answering
        if self.peers:
            self.bird.apply(self._neighbors(local), self.timers)

    def status(self) -> dict[str, object]:
        return {
            "peers": [str(p) for p in self.peers],
            "answering": self.answering and bool(self.peers),
            "running": self.process.alive(),
            "sessions": self.bird.sessions(),
            "timers": self.timers.model_dump(),
        }

    def stop(self) -> None:
        self.bird.stop()
