"""ExaBGP speaker driver.

Routes go through ExaBGP's process API (1-2 ms to the wire): the agent writes ``announce`` and
``withdraw`` commands into a FIFO read by our helper process (``l3dist.bgp.exabgp_api``). ExaBGP
keeps an Adj-RIB-Out so a session that comes back gets the routes again; a restarted ExaBGP gets
them re-sent by ``restarted()``. ExaBGP has no BFD and no separate keepalive setting (it is a third
of the hold time).

Route safety: ExaBGP has no export policy of its own, so the driver holds the line where it
writes the command: ``_announce`` refuses (``RouteRefused``) any route that is not a host route
inside the amphora's anycast prefixes, and a change is sent only once every command of it was
built, so a refused change sends nothing at all.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path

from l3dist.bgp.base import PeerStatus, Route, RouteRefused, SpeakerDriver
from l3dist.common.files import write_atomic
from l3dist.common.process import ManagedProcess
from l3dist.contracts.agent_config import BgpConfig, BgpPeerProfile, IPNetwork

EXABGP_ENV = {
    # Several ExaBGP instances on one host (lab notes, trap 4).
    "exabgp_daemon_user": "root",
    "exabgp_daemon_drop": "false",
    "exabgp_api_cli": "false",
    "exabgp_api_ack": "false",
    "exabgp_api_respawn": "true",
    "exabgp_log_destination": "stdout",
    "exabgp_log_level": "WARNING",
    "exabgp_log_statistics": "false",
}


class ExaBgpDriver(SpeakerDriver):
    name = "exabgp"

    def __init__(
        self,
        bgp: BgpConfig,
        local_addresses: dict[int, str],
        workdir: Path,
        *,
        anycast_prefixes: list[IPNetwork],
    ) -> None:
        super().__init__(bgp, local_addresses, workdir, anycast_prefixes=anycast_prefixes)
        self.conf_path = workdir / "exabgp.conf"
        self.fifo_path = workdir / "exabgp.cmd"
        self.status_path = workdir / "exabgp-status.json"
        exabgp = str(Path(sys.executable).with_name("exabgp"))
        self.process = ManagedProcess(
            "exabgp",
            [exabgp, "server", str(self.conf_path)],
            workdir,
            env=EXABGP_ENV,
            marker=str(self.conf_path),
        )

    def processes(self) -> list[ManagedProcess]:
        return [self.process]

    def _neighbor_block(self, peer: BgpPeerProfile) -> str:
        family = "ipv4 unicast" if peer.ip_version == 4 else "ipv6 unicast"
        lines = [
            f"neighbor {peer.peer_ip} {{",
            f"  router-id {self.bgp.router_id};",
            f"  local-address {self.local_address(peer)};",
            f"  local-as {self.local_as(peer)};",
            f"  peer-as {peer.remote_as};",
            "  passive false;",
            "  adj-rib-out true;",
            "  group-updates false;",
        ]
        if peer.hold_time is not None:
            lines.append(f"  hold-time {peer.hold_time};")
        if peer.md5_password:
            lines.append(f'  md5-password "{peer.md5_password}";')
        if peer.ttl_hops is not None:
            # GTSM (RFC 5082): send TTL 255, accept only what can have come from ttl_hops away.
            lines.append("  outgoing-ttl 255;")
            lines.append(f"  incoming-ttl {256 - peer.ttl_hops};")
        lines += [
            f"  family {{ {family}; }}",
            "  api { processes [ l3dist ]; neighbor-changes; }",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def config(self) -> str:
        helper = f"{sys.executable} -m l3dist.bgp.exabgp_api {self.fifo_path} {self.status_path}"
        parts = [f"process l3dist {{\n  run {helper};\n  encoder json;\n}}\n"]
        parts += [self._neighbor_block(peer) for _, peer in self.bgp.peers()]
        return "".join(parts)

    def _peer_ip(self, peer_id: str) -> str:
        peer = self.bgp.peer(peer_id)
        if peer is None:
            raise KeyError(peer_id)
        return str(peer.peer_ip)

    def _announce(self, route: Route) -> str:
        """The announce command; the one place a route can leave for ExaBGP (route safety)."""
        if not self.exportable(route):
            allowed = ", ".join(map(str, self.anycast_prefixes)) or "none"
            raise RouteRefused(
                f"refusing to announce {route.prefix}: not a host route inside the anycast "
                f"prefixes ({allowed})"
            )
        return (
            f"neighbor {self._peer_ip(route.peer_id)} announce route {route.prefix} "
            f"next-hop {route.nexthop} origin igp"
        )

    def _withdraw(self, route: Route) -> str:
        return (
            f"neighbor {self._peer_ip(route.peer_id)} withdraw route {route.prefix} "
            f"next-hop {route.nexthop}"
        )

    def _send(self, lines: list[str], timeout: float = 10.0) -> None:
        """Write commands to the helper's FIFO, waiting for it to be opened after a (re)start."""
        if not lines:
            return
        payload = ("\n".join(lines) + "\n").encode()
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.fifo_path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() > deadline:
                    raise RuntimeError(f"ExaBGP API helper not reachable: {exc}") from exc
                time.sleep(0.02)
        try:
            os.set_blocking(fd, True)
            os.write(fd, payload)
        finally:
            os.close(fd)

    def start(self, routes: frozenset[Route]) -> None:
        write_atomic(self.conf_path, self.config())
        if not self.fifo_path.exists():
            os.mkfifo(self.fifo_path, 0o600)
        self.status_path.unlink(missing_ok=True)
        self.process.start()
        self.routes = frozenset()
        self.apply(routes)

    def apply(self, routes: frozenset[Route]) -> None:
        keep = {(r.prefix, r.peer_id) for r in routes}
        lines = [
            self._withdraw(r)
            for r in sorted(self.routes - routes)
            if (r.prefix, r.peer_id) not in keep
        ]
        lines += [self._announce(r) for r in sorted(routes - self.routes)]
        self._send(lines)
        self.routes = routes

    def restarted(self) -> None:
        self._send([self._announce(r) for r in sorted(self.routes)])

    def peer_status(self) -> list[PeerStatus]:
        try:
            states = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            states = {}
        alive = self.process.alive()
        result = []
        for _, peer in self.bgp.peers():
            info = states.get(str(peer.peer_ip), {}) if alive else {}
            state = str(info.get("state", "Connect" if alive else "Down"))
            result.append(
                PeerStatus(
                    peer_id=peer.id,
                    peer_ip=str(peer.peer_ip),
                    remote_as=peer.remote_as,
                    state=state,
                    established=state == "Established",
                    last_error=info.get("last_error"),
                    bfd_state="unsupported by exabgp" if peer.bfd_enabled else None,
                )
            )
        return result
