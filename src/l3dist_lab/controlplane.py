"""The controller's processes on the lab host: the REST API, the worker, the health manager and
the router view (BMP collector), each started by the ``l3dist`` command in its own process
group, on one state directory (SQLite database, local CA, heartbeat key). Used by the demo, the
lifecycle benchmark and the end-to-end tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from l3dist_lab import fabric, hosts
from l3dist_lab.config import LabConfig

L3DIST = str(Path(sys.executable).with_name("l3dist"))
ADMIN = {"X-Project-Id": "admin", "X-Roles": "admin"}
# Who started which lab-side process (the control plane's, and any a test adds with
# record_process): "<owner pid> <process group> <program>" a line. An owner that died
# (SIGKILL, a lost session) left its processes running; the next control plane stops them
# (only those, and only once their owner is gone).
PROCESS_RECORD = Path("/run/l3dist-lab-controlplane.pids")
# Where the control plane's processes serve their metrics ([metrics] bind_host: 127.0.0.1);
# the API serves its own on /metrics.
METRICS_PORTS = {"worker": 9111, "health": 9112, "routerview": 9113}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_orphans() -> list[int]:
    """Kill the process groups recorded by control planes whose owner is dead, if each group's
    leader still runs the program recorded; the process groups killed."""
    if not PROCESS_RECORD.exists():
        return []
    kept, killed = [], []
    for line in PROCESS_RECORD.read_text().splitlines():
        try:
            owner_text, pid_text, program = line.split(" ", 2)
            owner, pid = int(owner_text), int(pid_text)
        except ValueError:
            continue
        if _alive(owner):
            kept.append(line)
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue  # gone already
        if program in argv[:2]:  # the program, or the interpreter running it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            killed.append(pid)
    _rewrite(kept)
    return killed


def _rewrite(lines: list[str]) -> None:
    """The record with these lines; no file at all when none is left (nothing left behind)."""
    if lines:
        PROCESS_RECORD.write_text("".join(f"{line}\n" for line in lines))
    else:
        PROCESS_RECORD.unlink(missing_ok=True)


def record_process(pid: int, program: str) -> None:
    """Remember a process group this process started, for stop_orphans after a crash."""
    with PROCESS_RECORD.open("a") as record:
        record.write(f"{os.getpid()} {pid} {program}\n")


def forget_processes(pids: set[int]) -> None:
    """Those process groups were stopped as planned."""
    if not PROCESS_RECORD.exists():
        return
    lines = PROCESS_RECORD.read_text().splitlines()
    rest = [line for line in lines if len(parts := line.split(" ", 2)) != 3
            or not parts[1].isdigit() or int(parts[1]) not in pids]  # fmt: skip
    _rewrite(rest)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Environment variables set for a while (this process and the processes it starts)."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ControlPlaneError(RuntimeError):
    pass


def controller_config(cfg: LabConfig, **sections: dict[str, Any]) -> str:
    """The controller's configuration file for the lab, as an operator writes one for a site:
    its drivers (the site's own networks, ``static``; its enrolled hosts, ``hosts``), and where
    amphorae send heartbeats (the controller's management address).
    ``sections`` add or override settings (``controller={"drain_timeout": 8}``)."""
    settings: dict[str, dict[str, Any]] = {
        "network": {"driver": "static"},
        "controller": {"compute_driver": "hosts", "metrics_port": METRICS_PORTS["worker"]},
        "health": {
            "controller_ip_port_list": [f"{management_address(cfg)}:5555"],
            "metrics_port": METRICS_PORTS["health"],
        },
        # The ToR's BMP feed (fabric.frr_config) comes to the management address.
        "router_view": {
            "bind_host": management_address(cfg),
            "bind_port": cfg.bmp_port,
            "metrics_port": METRICS_PORTS["routerview"],
        },
    }
    for name, values in sections.items():
        settings.setdefault(name, {}).update(values)
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        for name, values in settings.items()
    )


def management_address(cfg: LabConfig) -> str:
    """The controller's address on lb-mgmt-net (the lab host's own port on the network)."""
    return cfg.mgmt.host(4, cfg.controller_host_index)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ControlPlane:
    """API and worker processes; call() talks to the API as the admin (no-auth headers)."""

    def __init__(
        self,
        state_dir: Path,
        database_url: str | None = None,
        cfg: LabConfig | None = None,
        api_host: str = "127.0.0.1",
    ) -> None:
        """api_host: where the API listens; the lab's controller address on lb-mgmt-net
        (``management_address``) lets the lab's hosts reach it to enroll."""
        self.state_dir = state_dir
        self.config_path = state_dir / "l3dist.toml"
        self.lab = cfg or LabConfig()
        self.database_url = database_url or f"sqlite:///{state_dir / 'l3dist.db'}"
        self.port = free_port()
        self.api_host = api_host
        self.url = f"http://{api_host}:{self.port}"
        self.env = {
            **os.environ,
            "L3DIST_DATABASE_URL": self.database_url,
            "L3DIST_CA_DIR": str(state_dir / "ca"),
            "L3DIST_CONFIG": str(self.config_path),
            "L3DIST_API_URL": self.url,
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.http = httpx.Client(base_url=self.url, timeout=30)

    # -- processes ----------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():  # a test may have written its own
            self.config_path.write_text(controller_config(self.lab))
        stop_orphans()
        self._spawn("api", [L3DIST, "api", "--host", self.api_host, "--port", str(self.port)])
        self.start_worker()
        self._spawn("health", [L3DIST, "health"])
        self.start_routerview()
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http.get("/").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.processes["api"].poll() is not None:
                raise ControlPlaneError(f"the API did not start:\n{self.log_tail('api')}")
            time.sleep(0.1)

    def start_worker(self) -> subprocess.Popen[bytes]:
        return self._spawn("worker", [L3DIST, "worker"])

    def start_routerview(self) -> subprocess.Popen[bytes]:
        return self._spawn("routerview", [L3DIST, "routerview"])

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log: IO[bytes] = open(self.log_path(name), "ab")  # noqa: SIM115 - the child keeps it
        with log:
            proc = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = proc
        record_process(proc.pid, argv[0])
        return proc

    def stop(self) -> None:
        """Stop every process this control plane started (by its process group)."""
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        forget_processes({proc.pid for proc in self.processes.values()})
        self.http.close()

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def log_path(self, name: str) -> Path:
        return self.state_dir / f"{name}.log"

    def log_tail(self, name: str = "worker", lines: int = 40) -> str:
        path = self.log_path(name)
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    # -- the API ------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        expect: int = 200,
        headers: dict[str, str] = ADMIN,
    ) -> Any:
        response = self.http.request(method, path, json=body, headers=headers)
        if response.status_code != expect:
            raise ControlPlaneError(
                f"{method} {path}: {response.status_code} (wanted {expect}): {response.text}"
            )
        return response.json() if response.content else None

    def wait_for(self, path: str, key: str, wanted: str, timeout: float = 90) -> dict[str, Any]:
        """Poll an object until its provisioning_status is wanted (ERROR fails at once)."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.call("GET", path)[key]
            if obj["provisioning_status"] == wanted:
                return dict(obj)
            if obj["provisioning_status"] == "ERROR" or time.monotonic() > deadline:
                raise ControlPlaneError(f"{path} is {obj['provisioning_status']}, not {wanted}:"
                                        f"\n{self.log_tail()}")  # fmt: skip
            time.sleep(0.1)


@contextlib.contextmanager
def private_lab(cfg: LabConfig, prefix: str) -> Iterator[ControlPlane]:
    """The lab built, with a control plane (not started yet) on a private state directory
    (SQLite, CA, heartbeat key) that runs as on an operator's site: ``static`` network and
    ``hosts`` compute drivers, its API on the lab's management network so hosts can enroll, its
    own database. The lab's own records (its member servers, its amphorae made by hand) are in
    a database of the lab's, which this process uses. On exit the control plane's processes
    stop, the lab's hosts and the lab go down and the state directory is removed."""
    if fabric.is_up():
        raise RuntimeError("a lab is already running; `l3dist lab down` first")
    state = Path(tempfile.mkdtemp(prefix=prefix))
    plane = ControlPlane(state, cfg=cfg, api_host=management_address(cfg))
    plane.config_path.write_text(controller_config(cfg))
    try:
        with environment(
            L3DIST_DATABASE_URL=f"sqlite:///{state / 'lab.db'}",
            L3DIST_CA_DIR=plane.env["L3DIST_CA_DIR"],
        ):
            try:
                fabric.up(cfg)
                yield plane
            finally:
                plane.stop()
                for host in hosts.list_hosts():
                    hosts.delete(host)
                fabric.down()
    finally:
        shutil.rmtree(state, ignore_errors=True)
