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

import ipaddress
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


def _nexthop_protocol(nexthop: str, watched: bool = True) -> str:
    """The static protocol holding one next hop's VIPs (``nh_198_18_1_11``; ``vr_...`` for
    Register VIP routes a distributor does not watch by BFD)."""
    return ("nh_" if watched else "vr_") + re.sub(r"[^0-9A-Fa-f]", "_", nexthop)


def _protocol_key(key: tuple[str, bool]) -> tuple[int, int, str, bool]:
    return (*_address_key(key[0]), key[1])


def _address_key(address: str) -> tuple[int, int, str]:
    """Next hops in numeric order (a stable file); BIRD itself refuses one that is no address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return 0, 0, address
    return parsed.version, int(parsed), address


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def birdc(socket_path: Path, args: list[str], timeout: float = 5.0) -> str:
    """A birdc command's output; RuntimeError when BIRD refused it (a parse error, say)."""
    result = subprocess.run(
        [BIRDC, "-s", str(socket_path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    out = result.stdout
    if result.returncode != 0 or re.search(r"^\s*(Parse error|.*: error)", out, re.M):
        raise RuntimeError(f"birdc {' '.join(args)}: {out}{result.stderr}".strip())
    return out


def bfd_sessions(show_bfd_sessions: str) -> dict[str, str]:
    """Session state per neighbour address in ``show bfd sessions`` output."""
    states: dict[str, str] = {}
    for line in show_bfd_sessions.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] in ("Up", "Down", "Init", "AdminDown"):
            states[fields[0]] = fields[2]
    return states


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
        ]
        if self.bgp.add_path:
            lines.append("    add paths tx;")
        lines += ["  };", "}"]
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

    def bfd_protocol(self) -> str:
        """BFD for the peers that enable it (their own timers) and, with ``nexthop_bfd``, for
        the next hops: every interface's sessions get its timers (a peer's own override)."""
        timers = self.bgp.nexthop_bfd
        if timers is None:
            return "protocol bfd { }"
        return (
            'protocol bfd {\n  interface "*" {\n'
            f"    min rx interval {timers.receive_interval_ms} ms;\n"
            f"    min tx interval {timers.transmit_interval_ms} ms;\n"
            f"    multiplier {timers.detect_multiplier};\n"
            "  };\n}"
        )

    def main_config(self) -> str:
        parts = [
            f"router id {self.bgp.router_id};",
            "log stderr all;",
            "protocol device { scan time 10; }",
            self.bfd_protocol(),
            f"include {_quote(str(self.routes_path))};",
        ]
        parts += [self.export_filter(peer) for _, peer in self.bgp.peers()]
        parts += [self._peer_block(peer) for _, peer in self.bgp.peers()]
        return "\n".join(parts) + "\n"

    def routes_config(self, routes: frozenset[Route]) -> str:
        """The routes file: one static protocol per next hop holding its VIPs, and per peer a
        function choosing which (next hop, VIP) pairs it gets.

        One protocol per next hop puts one route per next hop and VIP in BIRD's table, so a
        channel with ADD-PATH sends each as its own path; without ADD-PATH BIRD sends the best
        one only (the spec's one next hop per VIP). A route is a blackhole with the next hop
        set on export; with ``nexthop_bfd`` it goes via the next hop and depends on a BFD
        session to it, so a next hop that stops answering leaves every peer at once (BIRD
        withdraws it by itself, nothing polls). The functions test a prefix set per next hop:
        one comparison per next hop, not per route (1,000 VIPs stay cheap to export).
        """
        bfd = self.bgp.nexthop_bfd is not None
        # A protocol per next hop, and (with next-hop BFD) per watched or not: a Register VIP
        # endpoint's routes do not depend on a BFD session.
        by_protocol: dict[tuple[str, bool], set[str]] = {}
        for route in routes:
            key = (route.nexthop, bfd and route.watched)
            by_protocol.setdefault(key, set()).add(route.prefix)
        parts = []
        for nexthop, watched in sorted(by_protocol, key=_protocol_key):
            version = 4 if ":" not in nexthop else 6
            target = f"via {nexthop} bfd" if watched else "blackhole"
            body = "".join(
                f"  route {p} {target};\n" for p in sorted(by_protocol[(nexthop, watched)])
            )
            name = _nexthop_protocol(nexthop, watched or not bfd)
            parts.append(f"protocol static {name} {{\n  ipv{version};\n{body}}}\n")
        for _, peer in self.bgp.peers():
            wanted: dict[tuple[str, bool], set[str]] = {}
            for route in routes:
                if route.peer_id == peer.id:
                    key = (route.nexthop, bfd and route.watched)
                    wanted.setdefault(key, set()).add(route.prefix)
            body = ""
            for nexthop, watched in sorted(wanted, key=_protocol_key):
                prefixes = ", ".join(sorted(wanted[(nexthop, watched)]))
                name = _nexthop_protocol(nexthop, watched or not bfd)
                body += (
                    f'  if proto = "{name}" && net ~ [ {prefixes} ] then {{\n'
                    f"    bgp_next_hop = {nexthop};\n"
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
        return birdc(self.socket_path, args, timeout)

    def bfd_states(self) -> dict[str, str]:
        """BFD session state per neighbour address, from ``show bfd sessions``."""
        try:
            return bfd_sessions(self.birdc(["show", "bfd", "sessions"]))
        except (RuntimeError, subprocess.TimeoutExpired):
            return {}

    def _add_path_taken(self, protocol_output: str, peer: BgpPeerProfile) -> bool | None:
        """Did the peer say it receives ADD-PATH for the family (``show protocols all``: the
        neighbour's capabilities list ``ADD-PATH`` with ``RX: ipv4``)? None: not offered."""
        if not self.bgp.add_path:
            return None
        neighbor = protocol_output.partition("Neighbor capabilities")[2]
        match = re.search(r"ADD-PATH\s+RX:([^\n]*)", neighbor)
        return match is not None and f"ipv{peer.ip_version}" in match.group(1).split()

    def peer_status(self) -> list[PeerStatus]:
        statuses = []
        alive = self.process.alive()
        bfd = self.bfd_states() if alive and any(p.bfd_enabled for _, p in self.bgp.peers()) else {}
        for _, peer in self.bgp.peers():
            state, error, out = "Down", None, ""
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
                    add_path=self._add_path_taken(out, peer) if state == "Established" else None,
                )
            )
        return statuses
