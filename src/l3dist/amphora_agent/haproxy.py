"""HAProxy in the amphora-haproxy namespace, in master-worker mode.

Until the controller pushes a load balancer's configuration, HAProxy answers HTTP on port 80 of
every local address (the VIP on loopback included) with the amphora's id: the lab's anycast tests
use that. A pushed configuration is checked (``haproxy -c``) before it replaces the running one,
then HAProxy reloads without dropping established connections: SIGUSR2 to the master starts new
workers while the old ones finish their connections, and ``expose-fd listeners`` hands the
listening sockets over so no new connection is refused meanwhile.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from l3dist.common.files import write_atomic
from l3dist.common.process import ManagedProcess
from l3dist.contracts.agent_api import MAX_CONNECTIONS

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def lb_marker(load_balancer_id: str) -> str:
    return f"# load balancer {load_balancer_id}\n"


class ConfigRejected(Exception):
    """haproxy -c refused a configuration; the message is HAProxy's own."""


# HAProxy's frontend counters (``show stat`` columns) as the heartbeat names them (Octavia's
# listener statistics): current sessions, total sessions, bytes in and out, request errors.
COUNTER_COLUMNS = {
    "scur": "active_connections",
    "stot": "total_connections",
    "bin": "bytes_in",
    "bout": "bytes_out",
    "ereq": "request_errors",
}


@dataclass(frozen=True)
class Stats:
    """What ``show info`` and ``show stat`` say: each frontend (a listener: named by its id) UP
    when OPEN, each backend (a pool: named ``pool_id:listener_id``) UP or DOWN, each frontend's
    counters, and the worker process that counted them (its counters start from zero: a new
    worker after every reload)."""

    listeners: dict[str, str]
    pools: dict[str, str]
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    worker: int | None = None

    @property
    def serving(self) -> bool:
        return bool(self.listeners) and all(s == "UP" for s in self.listeners.values())


def parse_stats(answer: str) -> Stats | None:
    """Stats from the answer to ``show info;show stat`` (or ``show stat`` alone): the info
    lines (``Pid: 123``) come first, then the CSV from its ``# pxname,...`` header on; None
    when there is no such CSV."""
    lines = answer.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("# pxname")), None)
    if start is None:
        return None
    worker = None
    for line in lines[:start]:
        key, _, value = line.partition(":")
        if key == "Pid" and value.strip().isdigit():
            worker = int(value.strip())
    header = lines[start][2:].split(",")
    try:
        proxy, name, status = header.index("pxname"), header.index("svname"), header.index("status")
    except ValueError:
        return None
    columns = {header.index(col): key for col, key in COUNTER_COLUMNS.items() if col in header}
    listeners: dict[str, str] = {}
    pools: dict[str, str] = {}
    counters: dict[str, dict[str, int]] = {}
    for row in (line.split(",") for line in lines[start + 1 :] if line):
        if len(row) <= status:
            continue
        if row[name] == "FRONTEND":
            listeners[row[proxy]] = "UP" if row[status] == "OPEN" else "DOWN"
            counters[row[proxy]] = {
                key: int(row[i]) if i < len(row) and row[i].isdigit() else 0
                for i, key in columns.items()
            }
        elif row[name] == "BACKEND":
            pool = row[proxy].split(":", 1)[0]
            up = row[status] == "UP" or pools.get(pool) == "UP"
            pools[pool] = "UP" if up else "DOWN"
    return Stats(listeners, pools, counters, worker)


def global_section(socket_path: Path) -> str:
    return f"""global
    maxconn {MAX_CONNECTIONS}
    stats socket {socket_path} mode 600 level admin expose-fd listeners
"""


class HaproxyService:
    def __init__(self, namespace: str | None, amphora_id: str, workdir: Path) -> None:
        self.namespace = namespace
        self.amphora_id = amphora_id
        self.workdir = workdir
        self.conf_path = workdir / "haproxy.cfg"
        self.pushed_path = workdir / "load-balancer.cfg"
        self.socket_path = workdir / "haproxy.sock"
        self.lock = threading.Lock()
        self.last_stats: Stats | None = None
        argv = [HAPROXY, "-W", "-db", "-f", str(self.conf_path)]
        if namespace:
            argv = ["ip", "netns", "exec", namespace, *argv]
        # Pushed configurations name the amphora as "${L3DIST_AMPHORA_ID}" (one text for all).
        self.env = {"L3DIST_AMPHORA_ID": amphora_id}
        self.process = ManagedProcess(
            "haproxy", argv, workdir, env=self.env, marker=str(self.conf_path)
        )

    def default_config(self) -> str:
        return (
            global_section(self.socket_path)
            + f"""
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s

frontend vip_http
    bind :::80 v4v6
    http-request return status 200 content-type text/plain string "{self.amphora_id}\\n"
"""
        )

    def pushed(self) -> str | None:
        """The load balancer configuration the controller pushed (body, without global)."""
        try:
            return self.pushed_path.read_text()
        except FileNotFoundError:
            return None

    def pushed_for(self, load_balancer_id: str) -> str | None:
        body = self.pushed()
        if body is None or not body.startswith(lb_marker(load_balancer_id)):
            return None
        return body.removeprefix(lb_marker(load_balancer_id))

    def _effective(self) -> str:
        pushed = self.pushed()
        if pushed is None:
            return self.default_config()
        return global_section(self.socket_path) + "\n" + pushed

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.conf_path, self._effective())
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def check(self, body: str) -> None:
        """Refuse a configuration HAProxy itself would refuse (nothing changes then)."""
        with tempfile.NamedTemporaryFile("w", dir=self.workdir, suffix=".cfg") as candidate:
            candidate.write(global_section(self.socket_path) + "\n" + body)
            candidate.flush()
            result = subprocess.run(
                [HAPROXY, "-c", "-f", candidate.name],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, **self.env},
            )
        if result.returncode != 0:
            alerts = [
                line.split(":", 2)[-1].strip()
                for line in (result.stdout + result.stderr).splitlines()
                if "ALERT" in line
            ]
            raise ConfigRejected("; ".join(alerts) or "rejected")

    def apply(self, load_balancer_id: str, body: str | None) -> bool:
        """Install a load balancer's configuration (None: back to the default) and reload;
        False when it was already in force."""
        with self.lock:
            marked = None if body is None else lb_marker(load_balancer_id) + body
            if marked == self.pushed():
                return False  # in force, so checked when it was pushed: no second parse
            if body is not None:
                self.check(body)
            body = marked
            if body is None:
                self.pushed_path.unlink(missing_ok=True)
            else:
                write_atomic(self.pushed_path, body)
            write_atomic(self.conf_path, self._effective())
            self.reload()
            return True

    def serving(self, timeout: float) -> bool:
        """Is HAProxy up with every frontend open? Asked on its stats socket; an answer that
        does not come within timeout (a hung HAProxy) is a no. A reload in progress (ours) is a
        yes: the old worker still serves. The answer is kept for the heartbeats (last_stats)."""
        if not self.lock.acquire(timeout=timeout):
            return True
        self.lock.release()
        stats = self._stats(timeout)
        self.last_stats = stats
        return stats is not None and stats.serving

    def _stats(self, timeout: float) -> Stats | None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.socket_path))
                sock.sendall(b"show info;show stat\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError:
            return None
        return parse_stats(b"".join(chunks).decode(errors="replace"))

    def reload(self) -> None:
        """Hitless reload: the master re-reads the file and replaces its workers."""
        pid = self.process.pid
        if pid is None or not self.process.alive():
            return  # the supervisor starts it again, from the new file
        os.kill(pid, signal.SIGUSR2)
        time.sleep(0.05)  # the new worker binds through the handed-over sockets
