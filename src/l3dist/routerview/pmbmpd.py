"""pmacct's BMP collector daemon, ``pmbmpd``, run as the router view's child.

pmbmpd accepts the routers' BMP sessions and decodes them; it writes one JSON object per
message to its message log, here a named pipe the collector reads, so nothing grows on disk.
Measured with pmacct 1.7.7 (Debian 12): pmbmpd ignores SIGTERM and SIGINT (it is stopped with
SIGKILL); its command line is rewritten to ``pmbmpd: Core Process``;
``bmp_daemon_max_peers`` (default 4) caps the routers it accepts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path


def config_text(bind_host: str, bind_port: int, max_routers: int, msglog: Path) -> str:
    return (
        "daemonize: false\n"
        f"bmp_daemon_ip: {bind_host}\n"
        f"bmp_daemon_port: {bind_port}\n"
        f"bmp_daemon_max_peers: {max_routers}\n"
        f"bmp_daemon_msglog_file: {msglog}\n"
        "bmp_daemon_msglog_output: json\n"
    )


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the collector dies (PR_SET_PDEATHSIG), so no
    pmbmpd outlives it holding the BMP port, however the collector ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Pmbmpd:
    """The daemon with its configuration and message pipe in ``workdir``; a child of the
    collector in the collector's process group (stopping the group stops it too)."""

    def __init__(
        self, workdir: Path, bind_host: str, bind_port: int, max_routers: int, binary: str
    ) -> None:
        self.workdir = workdir
        self.msglog = workdir / "msglog.pipe"
        self.config_path = workdir / "pmbmpd.conf"
        self.log_path = workdir / "pmbmpd.log"
        self.bind = (bind_host, bind_port, max_routers)
        self.binary = shutil.which(binary) or binary
        self.popen: subprocess.Popen[bytes] | None = None

    def check_installed(self) -> None:
        if not Path(self.binary).exists():
            raise RuntimeError(
                f"pmbmpd not found ({self.binary}): install pmacct (apt-get install pmacct) "
                "or set router_view.pmbmpd"
            )

    @contextlib.contextmanager
    def running(self) -> Iterator[int]:
        """Start pmbmpd and yield its message log's file descriptor, open for reading; stop it
        afterwards. The pipe is opened read-write, so opening never waits for pmbmpd and a
        restarted pmbmpd writes into the same pipe."""
        self.check_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config_text(*self.bind, self.msglog))
        with contextlib.suppress(FileNotFoundError):
            self.msglog.unlink()
        os.mkfifo(self.msglog, 0o600)
        fd = os.open(self.msglog, os.O_RDWR | os.O_NONBLOCK)
        try:
            self.start()
            yield fd
        finally:
            self.stop()
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                self.msglog.unlink()

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                [self.binary, "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,  # the collector runs one thread
            )

    def stop(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()  # it ignores SIGTERM
            self.popen.wait(timeout=10)
            self.popen = None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def close_session(bind_port: int, router: str) -> bool:
    """Close the BMP session with one router from our side (the kernel destroys the socket:
    ``ss -K``, CAP_NET_ADMIN): the router reconnects and re-sends its whole view."""
    result = subprocess.run(
        ["ss", "-K", "-tn", "state", "established", f"( sport = :{bind_port} )", "dst", router],
        capture_output=True,
        text=True,
        check=False,
        timeout=5,
    )
    return result.returncode == 0
