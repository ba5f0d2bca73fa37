"""ExaBGP speaker driver.

Routes go through ExaBGP's process API (1-2 ms to the wire): the agent writes ``announce`` and
``withdraw`` commands into a FIFO read by our helper process (``l3dist.bgp.exabgp_api``). ExaBGP
keeps an Adj-RIB-Out so a session that comes back gets the routes again; a restarted ExaBGP gets
them re-sent by ``restarted()``. ExaBGP has no BFD and no separate keepalive setting (it is a third
of the hold time).

A distributor's ExaBGP (``add_path``) offers ADD-PATH send and sends every next hop of a VIP as
its own path (``path-information``) to a peer whose OPEN took it, one next hop per VIP to
another (``paths.to_send``). ExaBGP has no BFD, so with ``nexthop_bfd`` a BIRD running BFD only
watches the next hops (``bird_bfd``) and a watcher thread, polling BIRD's control socket and
the negotiated capabilities every 20 ms, announces a next hop only while its session is Up.

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
import threading
import time
from pathlib import Path

from l3dist.bgp import paths
from l3dist.bgp.base import PeerStatus, Route, RouteRefused, SpeakerDriver
from l3dist.bgp.bird_bfd import BfdOnlyBird, Neighbor
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
        # What ExaBGP was last told to send (peer, prefix, path id) -> next hop.
        self.sent: paths.Sent = {}
        self.path_ids = paths.PathIds()
        self.lock = threading.RLock()
        self.nexthop_watch = (
            BfdOnlyBird("bird-nexthops", workdir, str(bgp.router_id)) if bgp.nexthop_bfd else None
        )
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None
        self._seen: tuple[frozenset[str], frozenset[str]] | None = None

    def processes(self) -> list[ManagedProcess]:
        if self.nexthop_watch is not None:
            return [self.process, self.nexthop_watch.process]
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
        if self.bgp.add_path:
            lines.append("  capability { add-path send; }")
        lines += [
            f"  family {{ {family}; }}",
            "  api { processes [ l3dist ]; neighbor-changes; negotiated; }",
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

    def _refuse_unless_exportable(self, route: Route) -> None:
        if not self.exportable(route):
            allowed = ", ".join(map(str, self.anycast_prefixes)) or "none"
            raise RouteRefused(
                f"refusing to announce {route.prefix}: not a host route inside the anycast "
                f"prefixes ({allowed})"
            )

    def _announce(self, route: Route, path_id: int | None = None) -> str:
        """The announce command; the one place a route can leave for ExaBGP (route safety)."""
        self._refuse_unless_exportable(route)
        path = f" path-information {path_id}" if path_id is not None else ""
        return (
            f"neighbor {self._peer_ip(route.peer_id)} announce route {route.prefix}{path} "
            f"next-hop {route.nexthop} origin igp"
        )

    def _withdraw(self, route: Route, path_id: int | None = None) -> str:
        path = f" path-information {path_id}" if path_id is not None else ""
        return (
            f"neighbor {self._peer_ip(route.peer_id)} withdraw route {route.prefix}{path} "
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
        if self.nexthop_watch is not None:  # idle until apply() names next hops
            self.nexthop_watch.apply([], self.bgp.nexthop_bfd)
        self.routes, self.sent = frozenset(), {}
        if self.bgp.add_path or self.nexthop_watch is not None:
            self._watching.set()
            self._watcher = threading.Thread(target=self._watch, name="exabgp-paths", daemon=True)
            self._watcher.start()
        self.apply(routes)

    def apply(self, routes: frozenset[Route]) -> None:
        """Every route is checked first (route safety: a refused change sends nothing), then
        what ExaBGP sends is made to match routes, the next hops BFD says are down left out."""
        for route in routes:
            self._refuse_unless_exportable(route)
        with self.lock:
            if self.nexthop_watch is not None:
                watched = [Neighbor(nh) for nh in sorted({r.nexthop for r in routes if r.watched})]
                self.nexthop_watch.apply(watched, self.bgp.nexthop_bfd)
            self._sync(routes)
            self.routes = routes

    def _sync(self, routes: frozenset[Route]) -> None:
        up = self._nexthops_up(routes)
        usable = frozenset(r for r in routes if r.nexthop in up or not r.watched)
        wanted = paths.to_send(usable, self._add_path_peers(), str(self.bgp.router_id),
                               self.path_ids)  # fmt: skip
        withdraw, announce = paths.changes(self.sent, wanted)
        lines = [self._withdraw(Route(p, nh, peer), pid) for peer, p, pid, nh in withdraw]
        lines += [self._announce(Route(p, nh, peer), pid) for peer, p, pid, nh in announce]
        self._send(lines)
        self.sent = wanted
        self.path_ids.keep_only(usable)

    def _nexthops_up(self, routes: frozenset[Route]) -> set[str]:
        if self.nexthop_watch is None:
            return {r.nexthop for r in routes}
        sessions = self.nexthop_watch.sessions()
        return {nh for nh, state in sessions.items() if state == "Up"}

    def _add_path_peers(self) -> set[str]:
        """The peers whose session took ADD-PATH for their family (the helper's record)."""
        if not self.bgp.add_path:
            return set()
        states = self._states()
        taken = set()
        for _, peer in self.bgp.peers():
            info = states.get(str(peer.peer_ip), {})
            sends = info.get("add_path_send", [])
            family = f"ipv{peer.ip_version} unicast"
            if info.get("state") == "Established" and isinstance(sends, list) and family in sends:
                taken.add(peer.id)
        return taken

    def _states(self) -> dict[str, dict[str, object]]:
        try:
            states: dict[str, dict[str, object]] = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
        return states

    def _watch(self) -> None:
        """Follow BFD and the negotiated capabilities; send again when either changes."""
        while self._watching.is_set():
            time.sleep(0.02)
            try:
                seen = (
                    frozenset(self._nexthops_up(self.routes)),
                    frozenset(self._add_path_peers()),
                )
                if seen != self._seen:
                    with self.lock:
                        self._sync(self.routes)
                    self._seen = seen
            except Exception:  # the watcher outlives a daemon's restart
                time.sleep(0.2)

    def restarted(self) -> None:
        with self.lock:
            _, announce = paths.changes({}, self.sent)
            self._send([self._announce(Route(p, nh, peer), pid) for peer, p, pid, nh in announce])

    def stop(self) -> None:
        self._watching.clear()
        if self._watcher is not None:
            self._watcher.join(timeout=2)
            self._watcher = None
        super().stop()

    def peer_status(self) -> list[PeerStatus]:
        states = self._states()
        alive = self.process.alive()
        add_path = self._add_path_peers()
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
                    last_error=str(info["last_error"]) if info.get("last_error") else None,
                    bfd_state="unsupported by exabgp" if peer.bfd_enabled else None,
                    add_path=(peer.id in add_path)
                    if self.bgp.add_path and state == "Established"
                    else None,
                )
            )
        return result
