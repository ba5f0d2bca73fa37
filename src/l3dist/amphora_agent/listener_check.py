"""Soft-failure detection in the amphora: HAProxy down or hung while the amphora lives. The VIP
routes are withdrawn while the listeners are unhealthy and announced again when they are back,
with rise/fall hysteresis so a flapping check does not flap the routes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from l3dist.contracts.agent_config import ListenerCheckConfig

log = logging.getLogger(__name__)


class Hysteresis:
    """healthy flips to False after `fall` failures in a row, back to True after `rise`
    successes in a row. It starts unhealthy: nothing is announced before HAProxy serves."""

    def __init__(self, rise: int, fall: int, healthy: bool = False) -> None:
        self.rise = rise
        self.fall = fall
        self.healthy = healthy
        self.streak = 0  # results in a row that disagree with the current state

    def update(self, ok: bool) -> bool:
        """Feed one check result; True when the state changed."""
        if ok == self.healthy:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= (self.rise if ok else self.fall):
            self.healthy = ok
            self.streak = 0
            return True
        return False


class ListenerChecker:
    def __init__(
        self,
        config: ListenerCheckConfig,
        check: Callable[[float], bool],
        on_change: Callable[[bool], None],
    ) -> None:
        self.config = config
        self.check = check
        self.on_change = on_change
        self.state = Hysteresis(config.rise, config.fall)
        self.lock = threading.Lock()
        self.checks = 0
        self.failed_checks = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="listener-check", daemon=True)

    @property
    def healthy(self) -> bool:
        return self.state.healthy

    def status(self) -> dict[str, object]:
        with self.lock:
            return {
                "healthy": self.state.healthy,
                "checks": self.checks,
                "failed_checks": self.failed_checks,
            }

    def start(self) -> None:
        self.thread.start()

    def mark_down(self) -> None:
        """HAProxy is known dead (its supervisor saw it): down now, without waiting for `fall`
        checks; the checks bring it back up after `rise` successes."""
        with self.lock:
            changed = self.state.healthy
            self.state.healthy, self.state.streak = False, 0
        if changed:
            log.warning("listeners down (HAProxy died): withdrawing")
            self.on_change(False)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stopping.wait(self.config.interval):
            try:
                ok = self.check(self.config.timeout)
            except Exception:
                log.exception("listener check failed to run")
                ok = False
            with self.lock:
                self.checks += 1
                self.failed_checks += not ok
                changed = self.state.update(ok)
            if changed:
                log.warning("listeners %s", "healthy: announcing" if ok else "down: withdrawing")
                try:
                    self.on_change(ok)
                except Exception:
                    log.exception("routes not updated after the listener check")
