"""The fence watch's rules (fencing.py), on its own thread with short timings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from l3dist.amphora_agent.fencing import FenceWatch


def watch(
    sessions_up: Callable[[], bool], fence_after: float = 0.3
) -> tuple[FenceWatch, list[str]]:
    fenced: list[str] = []
    w = FenceWatch(fence_after, sessions_up, fenced.append, tick=0.01, session_check=0.02)
    w.start()
    return w, fenced


def test_sessions_lost_longer_than_fence_after_fence() -> None:
    up = threading.Event()
    up.set()
    w, fenced = watch(up.is_set)
    time.sleep(0.1)
    up.clear()
    time.sleep(0.6)
    w.stop()
    assert len(fenced) == 1 and "no BGP session" in fenced[0]


def test_a_short_flap_and_a_session_never_up_do_not_fence() -> None:
    up = threading.Event()
    up.set()
    w, fenced = watch(up.is_set)
    time.sleep(0.1)
    up.clear()
    time.sleep(0.15)  # shorter than fence_after
    up.set()
    time.sleep(0.4)
    w.stop()
    never, never_fenced = watch(lambda: False)
    time.sleep(0.5)
    never.stop()
    assert fenced == [] and never_fenced == []


def test_a_clock_jump_fences() -> None:
    """A frozen process: its thread does not run for longer than fence_after."""
    stall = threading.Event()

    def sessions_up() -> bool:
        if stall.is_set():
            stall.clear()
            time.sleep(0.5)  # the watch's own thread stops, as SIGSTOP stops it
        return True

    w, fenced = watch(sessions_up)
    time.sleep(0.1)
    stall.set()
    time.sleep(0.8)
    w.stop()
    assert len(fenced) == 1 and "clock jumped" in fenced[0]
