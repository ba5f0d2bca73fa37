"""Fencing: an amphora that may have been failed over stops announcing, for good.

The controller cannot kill a real host the way the lab deletes a namespace. A host it failed
over may come back (thawed after a freeze, its network back after a partition) and its BGP
speaker would re-establish by itself and announce the old VIPs again, pulling flows to an
amphora that is no longer in the cluster. So the agent fences itself whenever the controller
could have declared it dead: the health manager fails over an amphora silent for
``heartbeat_timeout``, and the agent, with ``fence_after`` set to that timeout, fences when

- its own clock jumped by ``fence_after`` or more between two ticks (the process was frozen:
  a paused VM, a stalled host; its heartbeats stopped that long), or
- none of its BGP sessions has been Established for ``fence_after`` after one was (it is cut
  off from the management network: its heartbeats cannot have arrived either).

A fenced amphora withdraws every route, refuses new registrations and says so in its
heartbeats (the health manager then treats it as dead); only a reset of the host clears it.
A shorter freeze or a brief session flap does nothing: the controller cannot have failed the
amphora over, so it comes back as it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class FenceWatch:
    def __init__(
        self,
        fence_after: float,
        sessions_up: Callable[[], bool],
        fence: Callable[[str], None],
        # Thawed, the speaker may re-establish a session at once (the router connects every
        # second): the jump is noticed within a tick, so the tick is short (50 wakeups/s).
        tick: float = 0.02,
        session_check: float = 1.0,
    ) -> None:
        self.fence_after = fence_after
        self.sessions_up = sessions_up
        self.fence = fence
        self.tick = tick
        self.session_check = session_check
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fence-watch", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        last = time.monotonic()
        next_check = last
        seen_up = False
        down_since: float | None = None
        while not self.stopping.wait(self.tick):
            now = time.monotonic()
            if now - last >= self.fence_after:
                self.fence(f"the agent's clock jumped {now - last:.1f} s (it was frozen)")
                return
            last = now
            if now < next_check:
                continue
            next_check = now + self.session_check
            try:
                up = self.sessions_up()
            except Exception:  # the speaker is being restarted: ask again at the next check
                log.debug("BGP session state unavailable", exc_info=True)
                continue
            if up:
                seen_up, down_since = True, None
            elif seen_up:
                down_since = down_since if down_since is not None else now
                if now - down_since >= self.fence_after:
                    self.fence(f"no BGP session Established for {now - down_since:.1f} s")
                    return
