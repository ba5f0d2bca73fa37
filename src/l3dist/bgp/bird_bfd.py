"""A BIRD 2 that runs BFD only, with a list of neighbours.

Two users: a load-balancing amphora of a dedicated distributor answers the distributors' BFD
on its front end with one (amphora_agent.bfd_responder); an ExaBGP distributor, ExaBGP having
no BFD, watches its next hops with one and follows the sessions over BIRD's control socket
(``sessions()``: one short exchange on a kept connection, cheap enough to poll every few tens
of milliseconds, unlike a birdc process per look).

Invariant: the configuration file always says what BIRD should do now (a restarted BIRD reads it
and does the same).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from l3dist.bgp.bird import BIRD, bfd_sessions, birdc
from l3dist.common.files import write_atomic
from l3dist.common.process import ManagedProcess
from l3dist.contracts.agent_config import NexthopBfd

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, order=True)
class Neighbor:
    address: str
    local: str | None = None  # the source address; None: BIRD picks the interface's


class BfdOnlyBird:
    def __init__(
        self,
        name: str,
        workdir: Path,
        router_id: str,
        namespace: str | None = None,
        interface: str = "*",
    ) -> None:
        self.workdir, self.router_id, self.interface = workdir, router_id, interface
        self.conf_path = workdir / f"{name}.conf"
        self.socket_path = workdir / f"{name}.ctl"
        argv = [BIRD, "-f", "-c", str(self.conf_path), "-s", str(self.socket_path)]
        if namespace is not None:
            argv = ["ip", "netns", "exec", namespace, *argv]
        self.process = ManagedProcess(name, argv, workdir, marker=str(self.conf_path))
        self.neighbors: list[Neighbor] = []
        self.timers = NexthopBfd()
        self._control = BirdControl(self.socket_path)

    def config(self) -> str:
        t = self.timers
        device = f' dev "{self.interface}"' if self.interface != "*" else ""
        lines = [
            f"router id {self.router_id};",
            "log stderr all;",
            "protocol device { scan time 10; }",
            "protocol bfd watched {",
            f'  interface "{self.interface}" {{ min rx interval {t.receive_interval_ms} ms; '
            f"min tx interval {t.transmit_interval_ms} ms; multiplier {t.detect_multiplier}; }};",
        ]
        for n in sorted(self.neighbors):
            local = f" local {n.local}" if n.local else ""
            lines.append(f"  neighbor {n.address}{device}{local};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def apply(
        self, neighbors: list[Neighbor], timers: NexthopBfd | None = None, run: bool = True
    ) -> None:
        """Run BFD with these neighbours (none: BIRD runs idle), or stop BIRD (run False: the
        caller took it off its supervisor first). A configuration BIRD refuses is not taken
        (RuntimeError) and the running one stays."""
        neighbors = sorted(set(neighbors))
        timers = timers or self.timers
        if not run:
            self.neighbors, self.timers = neighbors, timers
            self.stop()
            return
        if neighbors == self.neighbors and timers == self.timers and self.process.alive():
            return
        old = self.neighbors, self.timers
        self.neighbors, self.timers = neighbors, timers
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.conf_path, self.config())
        parsed = subprocess.run(
            [BIRD, "-p", "-c", str(self.conf_path)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if parsed.returncode != 0:
            self.neighbors, self.timers = old
            write_atomic(self.conf_path, self.config())
            raise RuntimeError(f"BIRD refused its BFD configuration: {parsed.stderr.strip()}")
        if not self.process.alive():
            self.process.start()
        else:
            birdc(self.socket_path, ["configure"])

    def sessions(self) -> dict[str, str]:
        """BFD session state per neighbour address (Up, Down, Init, AdminDown)."""
        if not self.process.alive():
            return {}
        try:
            return bfd_sessions(self._control.query("show bfd sessions"))
        except OSError:
            return {}

    def stop(self) -> None:
        self._control.close()
        self.process.stop()


class BirdControl:
    """BIRD's control socket, kept open: ``query`` sends one command and returns its reply
    without the reply codes (BIRD's CLI protocol: ``NNNN-`` continues, ``NNNN `` ends, a
    leading space continues the previous code)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._lock = threading.Lock()

    def query(self, command: str, timeout: float = 2.0) -> str:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._sock is None:
                        self._connect(timeout)
                    assert self._sock is not None
                    self._sock.sendall(command.encode() + b"\n")
                    return self._reply()
                except OSError:
                    self.close()
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    def _connect(self, timeout: float) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(str(self.path))
        self._sock, self._buffer = sock, b""
        self._reply()  # the greeting: 0001 BIRD ... ready.

    def _reply(self) -> str:
        lines = []
        while True:
            line = self._line()
            match = re.match(r"^(\d{4})([ -])(.*)$", line)
            if match is None:
                lines.append(line[1:] if line.startswith(" ") else line)
                continue
            code, more, text = match.groups()
            if int(code) >= 8000:
                raise OSError(f"BIRD: {text}")
            if int(code) != 0:
                lines.append(text)
            if more == " ":
                return "\n".join(lines) + "\n"

    def _line(self) -> str:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise OSError("BIRD closed its control socket")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
