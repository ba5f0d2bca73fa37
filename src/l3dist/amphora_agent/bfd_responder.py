"""A load-balancing amphora's side of the dedicated distributors' next-hop BFD.

In dedicated mode the distributor amphorae announce this amphora's front end only while a BFD
session to it is Up (their BIRD's static routes with ``bfd``), so this amphora runs BFD on its
front end for them: a second BIRD, BFD only, in the amphora-haproxy namespace, with one
neighbour per distributor. It holds no BGP session and no fabric credentials (the spec's
security point). A frozen or dead amphora stops answering by itself; while the listener check
says the listeners are down the agent stops answering on purpose (the neighbours leave the
configuration), so a soft failure withdraws the paths too, within the distributors' detect time.

Invariants: the configuration file always says what BIRD should do now (a restarted BIRD reads
it and does the same), and nothing runs without peers.
"""

from __future__ import annotations

import ipaddress
import logging
import subprocess
from pathlib import Path

from l3dist.bgp.bird import BIRD, bfd_sessions, birdc
from l3dist.common.files import write_atomic
from l3dist.common.process import ManagedProcess
from l3dist.contracts.agent_config import NexthopBfd

log = logging.getLogger(__name__)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class BfdResponder:
    def __init__(self, namespace: str, ifname: str, workdir: Path, router_id: str) -> None:
        self.namespace, self.ifname, self.router_id = namespace, ifname, router_id
        self.workdir = workdir
        self.conf_path = workdir / "bird-bfd.conf"
        self.socket_path = workdir / "bird-bfd.ctl"
        self.process = ManagedProcess(
            "bird-bfd",
            ["ip", "netns", "exec", namespace, BIRD, "-f", "-c", str(self.conf_path),
             "-s", str(self.socket_path)],
            workdir,
            marker=str(self.conf_path),
        )  # fmt: skip
        self.peers: list[IPAddress] = []
        self.timers = NexthopBfd()
        self.answering = True

    def config(self, local: list[IPInterface]) -> str:
        """BFD only: a neighbour per distributor of a family the front end has, from the front
        end's own address; none while not answering."""
        t = self.timers
        lines = [
            f"router id {self.router_id};",
            "log stderr all;",
            "protocol device { scan time 10; }",
            "protocol bfd nexthops {",
            f'  interface "{self.ifname}" {{ min rx interval {t.receive_interval_ms} ms; '
            f"min tx interval {t.transmit_interval_ms} ms; multiplier {t.detect_multiplier}; }};",
        ]
        if self.answering:
            for peer in self.peers:
                source = next((a.ip for a in local if a.version == peer.version), None)
                if source is not None:
                    lines.append(f'  neighbor {peer} dev "{self.ifname}" local {source};')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def set_peers(
        self, peers: list[IPAddress], timers: NexthopBfd, local: list[IPInterface]
    ) -> None:
        """Answer these distributors (none: stop the daemon)."""
        self.peers, self.timers = list(peers), timers
        if not self.peers:
            self.process.stop()
            return
        self._apply(local)

    def set_answering(self, answering: bool, local: list[IPInterface]) -> None:
        """The listener check's verdict: answer while the listeners serve."""
        if answering == self.answering:
            return
        self.answering = answering
        if self.peers:
            self._apply(local)

    def _apply(self, local: list[IPInterface]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.conf_path, self.config(local))
        parsed = subprocess.run(
            [BIRD, "-p", "-c", str(self.conf_path)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if parsed.returncode != 0:
            raise RuntimeError(f"BIRD refused its BFD configuration: {parsed.stderr.strip()}")
        if not self.process.alive():
            self.process.start()
            return
        birdc(self.socket_path, ["configure"])

    def sessions(self) -> dict[str, str]:
        """BFD session state per distributor address (``show bfd sessions``)."""
        if not self.process.alive():
            return {}
        try:
            return bfd_sessions(birdc(self.socket_path, ["show", "bfd", "sessions"]))
        except (RuntimeError, subprocess.TimeoutExpired):
            return {}

    def status(self) -> dict[str, object]:
        return {
            "peers": [str(p) for p in self.peers],
            "answering": self.answering and bool(self.peers),
            "running": self.process.alive(),
            "sessions": self.sessions(),
            "timers": self.timers.model_dump(),
        }

    def stop(self) -> None:
        self.process.stop()
