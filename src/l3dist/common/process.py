"""Starting, supervising and stopping the daemons l3dist owns.

Every daemon runs in its own session (process group) so that stopping it also stops any helper it
forked (ExaBGP's API helpers survive ExaBGP otherwise). PIDs are written to a pid file right after
the start, so a later teardown, even after a crash, kills only processes we started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """True when the PID exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_group(pgid: int, timeout: float = 3.0) -> None:
    """SIGTERM a process group, then SIGKILL whatever is left after the timeout. A stopped
    (frozen) group is continued right after the SIGTERM, or it could not act on it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
            if sig == signal.SIGTERM:
                os.killpg(pgid, signal.SIGCONT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline:
            if not _group_alive(pgid):
                return
            time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def kill_from_pidfile(pid_path: Path, marker: str, timeout: float = 3.0) -> bool:
    """Kill the process group recorded in a pid file if its command line still contains marker.

    The marker check protects against a recycled PID after a crash: we never kill a process
    that is not the one we started.
    """
    try:
        pid = int(pid_path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    killed = False
    if pid_alive(pid) and marker in _cmdline(pid):
        kill_group(os.getpgid(pid), timeout)
        killed = True
    with contextlib.suppress(FileNotFoundError):
        pid_path.unlink()
    return killed


class ManagedProcess:
    """One daemon in its own process group, with a pid file and a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        env: dict[str, str] | None = None,
        marker: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.workdir = workdir
        self.env = env
        self.marker = marker or self.argv[0]
        self.pid_path = workdir / f"{name}.pid"
        self.log_path = workdir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        """Start the daemon; a leftover instance from a crashed owner is killed first."""
        kill_from_pidfile(self.pid_path, self.marker)
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        with open(self.log_path, "ab") as logf:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                cwd=self.workdir,
            )
        self.pid_path.write_text(f"{self.popen.pid}\n")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the whole process group and reap the daemon."""
        if self.popen is not None:
            if self.popen.poll() is None:
                kill_group(self.popen.pid, timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=1)
            self.popen = None
        else:
            kill_from_pidfile(self.pid_path, self.marker, timeout)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Supervisor:
    """Restarts supervised daemons that die, with a short capped backoff.

    A restart hook lets the owner re-apply state the daemon lost (e.g. re-send routes).
    """

    def __init__(self, interval: float = 0.2, healthy_after: float = 30.0) -> None:
        self.interval = interval
        self.healthy_after = healthy_after
        self._entries: dict[
            str, tuple[ManagedProcess, Callable[[], None] | None, Callable[[], None] | None]
        ] = {}
        self._backoff: dict[str, float] = {}
        self._next_try: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts: dict[str, int] = {}

    def add(
        self,
        proc: ManagedProcess,
        on_restart: Callable[[], None] | None = None,
        on_death: Callable[[], None] | None = None,
    ) -> None:
        """Supervise proc; on_death runs when it is found dead (before any restart),
        on_restart after it was started again."""
        with self._lock:
            self._entries[proc.name] = (proc, on_restart, on_death)
            self.restarts.setdefault(proc.name, 0)

    def remove(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                entries = list(self._entries.values())
            for proc, hook, on_death in entries:
                now = time.monotonic()
                if proc.alive():
                    # A daemon that stayed up for a while earns a fresh, short backoff.
                    if now - self._next_try.get(proc.name, 0.0) > self.healthy_after:
                        self._backoff.pop(proc.name, None)
                    continue
                if self._stop.is_set():
                    continue
                if on_death is not None:
                    try:
                        on_death()
                    except Exception:
                        log.exception("death hook of %s failed", proc.name)
                if now < self._next_try.get(proc.name, 0.0):
                    continue
                backoff = min(self._backoff.get(proc.name, 0.25) * 2, 5.0)
                self._backoff[proc.name] = backoff
                self._next_try[proc.name] = now + backoff
                log.warning("%s died (log: %s); restarting", proc.name, proc.log_tail(5))
                try:
                    # Under the lock: once remove() has returned, a process is never started
                    # again by us (its owner may be replacing it). Hooks run outside it.
                    with self._lock:
                        if self._entries.get(proc.name, (None, None, None))[0] is not proc:
                            continue
                        proc.start()
                    self.restarts[proc.name] = self.restarts.get(proc.name, 0) + 1
                    if hook is not None:
                        hook()
                except Exception:
                    log.exception("restart of %s failed", proc.name)
