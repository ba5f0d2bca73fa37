"""BIRD 2 speaker driver (the default).

Routes live in an included file: static blackhole routes for the VIPs and, per peer, a function
that sets the next hop (the front-end IP) and origin of its routes. A change rewrites that file
and runs ``birdc configure`` (~3 ms); BIRD re-exports without resetting sessions. Because the
routes are part of BIRD's own configuration, a restarted BIRD announces them again by itself.

Route safety: each peer's export filter lives in the main configuration, written once at start
from the amphora's anycast prefixes, not in the routes file. It rejects anything that is not a
host route (/32, /128) inside those prefixes before it asks the routes file's function, so no
content of the routes file (a bug, a foreign VIP) can make BIRD send a default route, an
aggregate or a foreign prefix.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from l3dist.bgp import policy
from l3dist.bgp.base import PeerStatus, Route, SpeakerDriver
from l3dist.common.files import write_atomic
from l3dist.common.process import ManagedProcess
from l3dist.contracts.agent_config import BgpConfig, BgpPeerProfile, IPNetwork

BIRD = shutil.which("bird") or "/usr/sbin/bird"
BIRDC = shutil.which("birdc") or "/usr/sbin/birdc"


def protocol_name(peer_id: str) -> str:
    return "p_" + re.sub(r"[^A-Za-z0-9]", "_", peer_id)


def _route_function(peer_id: str) -> str:
    """The routes file's function for a peer: sets next hop and origin of the peer's routes
    and says whether the route is one of them."""
    return "routes_" + protocol_name(peer_id)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class BirdDriver(SpeakerDriver):
    name = "bird"

    def __init__(
        self,
        bgp: BgpConfig,
        local_addresses: dict[int, str],
        workdir: Path,
        *,
        anycast_prefixes: list[IPNetwork],
    ) -> None:
        super().__init__(bgp, local_addresses, workdir, anycast_prefixes=anycast_prefixes)
        self.conf_path = workdir / "bird.conf"
        self.routes_path = workdir / "bird-routes.conf"
        self.socket_path = workdir / "bird.ctl"
        self.process = ManagedProcess(
            "bird",
            [BIRD, "-f", "-c", str(self.conf_path), "-s", str(self.socket_path)],
            workdir,
            marker=str(self.conf_path),
        )

    def processes(self) -> list[ManagedProcess]:
        return [self.process]

    # -- configuration ---------------------------------------------------------------------

    def _peer_block(self, peer: BgpPeerProfile) -> str:
        lines = [
            f"protocol bgp {protocol_name(peer.id)} {{",
            f"  local {self.local_address(peer)} as {self.local_as(peer)};",
            f"  neighbor {peer.peer_ip} as {peer.remote_as};",
            # Fast re-admission after a failure (lab notes, trap 5).
            "  connect delay time 1;",
            "  connect retry time 1;",
            "  error wait time 1, 2;",
        ]
        if peer.hold_time is not None:
            lines.append(f"  hold time {peer.hold_time};")
            if peer.hold_time:
                lines.append(f"  startup hold time {max(peer.hold_time, 3)};")
        if peer.keepalive_interval:
            lines.append(f"  keepalive time {peer.keepalive_interval};")
        if peer.md5_password:
            lines.append(f"  password {_quote(peer.md5_password)};")
        if peer.bfd_enabled:
            lines.append(
                f"  bfd {{ min rx interval {peer.bfd_receive_interval_ms} ms; "
                f"min tx interval {peer.bfd_transmit_interval_ms} ms; "
                f"multiplier {peer.bfd_detect_multiplier}; }};"
            )
        if peer.ttl_hops is not None:
            lines.append("  ttl security on;")
            if peer.ttl_hops > 1:
                lines.append(f"  multihop {peer.ttl_hops};")
        channel = "ipv4" if peer.ip_version == 4 else "ipv6"
        lines += [
            f"  {channel} {{",
            "    import none;",
            f"    export filter export_{protocol_name(peer.id)};",
            "  };",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def anycast_set(self, version: int) -> str | None:
        """The BIRD prefix set of the host routes inside the anycast prefixes of one IP
        version (``[ 198.18.100.0/24{32,32} ]``); None when there is none."""
        pools = policy.by_version(self.anycast_prefixes, version)
        if not pools:
            return None
        bits = 32 if version == 4 else 128
        return "[ " + ", ".join(f"{p}{{{bits},{bits}}}" for p in pools) + " ]"

    def export_filter(self, peer: BgpPeerProfile) -> str:
        """The peer's export filter: the route-safety guard, then the routes file's choice."""
        name = protocol_name(peer.id)
        pools = self.anycast_set(peer.ip_version)
        lines = [
            f"filter export_{name} {{",
            "  # Route safety: only host routes inside the anycast prefixes ever leave here.",
        ]
        if pools is None:
            lines.append(f"  reject;  # no IPv{peer.ip_version} anycast prefix: nothing to send")
        else:
            lines += [
                f"  if ! (net ~ {pools}) then reject;",
                f"  if {_route_function(peer.id)}() then accept;",
                "  reject;",
            ]
        return "\n".join([*lines, "}"]) + "\n"

    def main_config(self) -> str:
        parts = [
            f"router id {self.bgp.router_id};",
            "log stderr all;",
            "protocol device { scan time 10; }",
            "protocol bfd { }",
            f"include {_quote(str(self.routes_path))};",
        ]
        parts += [self.export_filter(peer) for _, peer in self.bgp.peers()]
        parts += [self._peer_block(peer) for _, peer in self.bgp.peers()]
        return "\n".join(parts) + "\n"

    def routes_config(self, routes: frozenset[Route]) -> str:
        prefixes = {
            4: sorted({r.prefix for r in routes if r.version == 4}),
            6: sorted({r.prefix for r in routes if r.version == 6}),
        }
        parts = []
        for version in (4, 6):
            body = "".join(f"  route {p} blackhole;\n" for p in prefixes[version])
            parts.append(f"protocol static vips{version} {{\n  ipv{version};\n{body}}}\n")
        for _, peer in self.bgp.peers():
            body = ""
            for route in sorted(r for r in routes if r.peer_id == peer.id):
                body += (
                    f"  if net = {route.prefix} then {{\n"
                    f"    bgp_next_hop = {route.nexthop};\n"
                    "    bgp_origin = ORIGIN_IGP;\n"
                    "    return true;\n"
                    "  }\n"
                )
            parts.append(f"function {_route_function(peer.id)}()\n{{\n{body}  return false;\n}}\n")
        return "".join(parts)

    def _write(self, routes: frozenset[Route]) -> None:
        write_atomic(self.routes_path, self.routes_config(routes))
        write_atomic(self.conf_path, self.main_config())

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, routes: frozenset[Route]) -> None:
        self._write(routes)
        self.routes = routes
        self.process.start()

    def apply(self, routes: frozenset[Route]) -> None:
        self._write(routes)
        try:
            self.birdc(["configure"])
        except (RuntimeError, subprocess.TimeoutExpired):
            if self.process.popen is not None and not self.process.alive():
                pass  # the supervisor restarts BIRD, which reads the new file
            else:
                raise
        self.routes = routes

    def restarted(self) -> None:
        """Nothing to do: the restarted BIRD read its routes from the config file."""

    def birdc(self, args: list[str], timeout: float = 5.0) -> str:
        result = subprocess.run(
            [BIRDC, "-s", str(self.socket_path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        out = result.stdout
        if result.returncode != 0 or re.search(r"^\s*(Parse error|.*: error)", out, re.M):
            raise RuntimeError(f"birdc {' '.join(args)}: {out}{result.stderr}".strip())
        return out

    def bfd_states(self) -> dict[str, str]:
        """BFD session state per neighbour address, from ``show bfd sessions``."""
        states: dict[str, str] = {}
        try:
            out = self.birdc(["show", "bfd", "sessions"])
        except (RuntimeError, subprocess.TimeoutExpired):
            return states
        for line in out.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] in ("Up", "Down", "Init", "AdminDown"):
                states[fields[0]] = fields[2]
        return states

    def peer_status(self) -> list[PeerStatus]:
        statuses = []
        alive = self.process.alive()
        bfd = self.bfd_states() if alive and any(p.bfd_enabled for _, p in self.bgp.peers()) else {}
        for _, peer in self.bgp.peers():
            state, error = "Down", None
            if alive:
                try:
                    out = self.birdc(["show", "protocols", "all", protocol_name(peer.id)])
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    out, error = "", str(exc)
                match = re.search(r"BGP state:\s+(\S+)", out)
                if match:
                    state = match.group(1)
                err = re.search(r"Last error:\s+(.+)", out)
                if err:
                    error = err.group(1).strip()
            statuses.append(
                PeerStatus(
                    peer_id=peer.id,
                    peer_ip=str(peer.peer_ip),
                    remote_as=peer.remote_as,
                    state=state,
                    established=state == "Established",
                    last_error=error,
                    bfd_state=bfd.get(str(peer.peer_ip), "Down") if peer.bfd_enabled else None,
                )
            )
        return statuses
