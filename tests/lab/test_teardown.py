"""Lab teardown leaves nothing behind, even after a crash, and can run any number of times."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from l3dist.common.process import pid_alive
from l3dist_lab import amphora, fabric, plumbing
from l3dist_lab.config import FRR_CONF_DIR, FRR_RUN_DIR, PREFIX, STATE_DIR, LabConfig


def lab_pids() -> set[int]:
    pids: set[int] = set()
    for ns in plumbing.list_namespaces(PREFIX):
        pids.update(plumbing.namespace_pids(ns))
    return pids


def test_down_after_a_crash_leaves_nothing(lab_prerequisites: None) -> None:
    fabric.down()
    cfg = LabConfig()
    fabric.up(cfg)
    bird_amp = amphora.create(cfg, "bird")
    exa_amp = amphora.create(cfg, "exabgp")
    pids = lab_pids()
    assert len(pids) >= 9  # FRR x3, and per amphora: agent, speaker, HAProxy (+ helpers)

    # A crash: the agents die without stopping their daemons, which keep running orphaned.
    for amp in (bird_amp, exa_amp):
        os.kill(int((amp.dir / "agent.pid").read_text()), signal.SIGKILL)

    fabric.down()
    assert not any(pid_alive(pid) for pid in pids)
    assert plumbing.list_namespaces(PREFIX) == []
    assert not any(name.startswith(PREFIX) for name in plumbing.link_names(None))
    for path in (STATE_DIR, FRR_CONF_DIR, FRR_RUN_DIR):
        assert not Path(path).exists()
    routes = subprocess.run(
        ["ip", "route", "show", "match", str(cfg.mgmt.v4[1])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "l3d-" not in routes

    # Idempotent: a second teardown finds nothing and fails on nothing.
    assert fabric.down() == []
