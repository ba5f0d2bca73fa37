"""Process supervision on real processes: group kill, restart with hook, pid-file safety."""

from __future__ import annotations

import os
import time
from pathlib import Path

from l3dist.common.process import ManagedProcess, Supervisor, kill_from_pidfile, pid_alive


def wait(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    proc = ManagedProcess("pair", ["sh", "-c", "sleep 60 & sleep 60"], tmp_path)
    proc.start()
    assert proc.pid is not None
    assert wait(lambda: len(child_pids(proc.pid)) >= 1)  # type: ignore[arg-type]
    helpers = child_pids(proc.pid)
    proc.stop()
    assert wait(lambda: not any(pid_alive(h) for h in helpers))
    assert not proc.pid_path.exists()


def test_supervisor_restarts_a_dead_daemon_and_calls_the_hook(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", ["sleep", "60"], tmp_path)
    proc.start()
    hooked: list[int] = []
    supervisor = Supervisor(interval=0.05)
    supervisor.add(proc, on_restart=lambda: hooked.append(1))
    supervisor.start()
    try:
        first = proc.pid
        assert first is not None
        os.kill(first, 9)
        assert wait(lambda: proc.alive() and proc.pid != first)
        assert hooked == [1]
        assert supervisor.restarts["sleeper"] == 1
        assert int(proc.pid_path.read_text()) == proc.pid
    finally:
        supervisor.stop()
        proc.stop()


def test_pid_file_of_someone_else_is_not_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "other.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert kill_from_pidfile(pid_file, marker="not-in-our-command-line") is False
    assert pid_alive(os.getpid())
    assert not pid_file.exists()
