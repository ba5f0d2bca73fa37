"""``l3dist routerview``: runs pmbmpd, reads its message log, keeps the routers' view
(``view.RouterView``) and writes it to the database as it changes.

Invariants: the database holds the view as of the last message read (one transaction per read
batch, at most ``BATCH_SECONDS`` old); a router whose view has a path the router has not
confirmed is asked for a fresh dump (its BMP session closed, at most once per
``resync_interval``), so no path stays ``pending`` longer than a reconnect; pmbmpd dying is
noticed within a loop and it is started again (the routers reconnect by themselves).
"""

from __future__ import annotations

import datetime
import logging
import os
import select
import threading
import time
from pathlib import Path

from l3dist.common.config import RouterViewConfig
from l3dist.db.session import Database
from l3dist.routerview import messages, pmbmpd, store
from l3dist.routerview.metrics import ANNOUNCE_LATENCY
from l3dist.routerview.view import Changes, RouterView

LOG = logging.getLogger("l3dist.routerview")
BATCH_SECONDS = 0.05
RESYNC_DELAY = 0.2  # let a burst of updates (every amphora of a change) arrive first


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Collector:
    def __init__(self, cfg: RouterViewConfig, db: Database, workdir: Path) -> None:
        self.cfg = cfg
        self.db = db
        self.view = RouterView(sync_grace=cfg.sync_grace, silent_peer=cfg.silent_peer)
        self.daemon = pmbmpd.Pmbmpd(
            workdir, cfg.bind_host, cfg.bind_port, cfg.max_routers, cfg.pmbmpd
        )
        self._stop = threading.Event()
        self._buffer = b""
        self._resync_due: dict[str, float] = {}
        self._last_resync: dict[str, float] = {}
        self.counters = {"messages": 0, "malformed": 0, "resyncs": 0, "pmbmpd_restarts": 0}

    def stop(self) -> None:
        self._stop.set()

    def run_forever(self) -> None:
        with self.daemon.running() as fd:
            with self.db.session() as session:
                store.forget_all(session)
            LOG.info("collecting BMP on %s:%s", self.cfg.bind_host, self.cfg.bind_port)
            while not self._stop.is_set():
                self.step(fd)
                if not self.daemon.alive():
                    LOG.warning("pmbmpd stopped; starting it again:\n%s", self.daemon.log_tail())
                    self.counters["pmbmpd_restarts"] += 1
                    time.sleep(0.5)
                    self.daemon.start()

    def step(self, fd: int) -> None:
        """Read what arrived within a batch window, apply it, write the changes, resync."""
        changes = Changes()
        deadline = time.monotonic() + BATCH_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([fd], [], [], left if not changes else min(left, 0.01))
            if not ready:
                if changes:
                    break
                continue
            for line in self._read_lines(fd):
                changes.update(self._apply(line))
        now = utcnow()
        changes.update(self.view.sweep(now))
        if changes:
            with self.db.session() as session:
                store.write(session, self.view, changes, now)
        if self.view.new_paths:
            self._time_new_paths()
        self._resync()

    def _time_new_paths(self) -> None:
        """Registration to router, for paths registered within the last minute (a path a
        router re-learns later, after a restart, is no announcement's latency)."""
        new, self.view.new_paths = self.view.new_paths, []
        with self.db.session(writer=False) as session:
            for router, prefix, next_hop, received in new:
                registered = store.registered_at(session, prefix, next_hop)
                if registered is None:
                    continue
                latency = (received - registered).total_seconds()
                if 0 <= latency <= 60:
                    ANNOUNCE_LATENCY.labels(router).observe(latency)

    def _read_lines(self, fd: int) -> list[str]:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return []
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines if line.strip()]

    def _apply(self, line: str) -> Changes:
        self.counters["messages"] += 1
        try:
            event = messages.parse(line)
        except (ValueError, KeyError, TypeError):
            self.counters["malformed"] += 1
            LOG.warning("unreadable BMP log line: %.200s", line)
            return Changes()
        if event is None:
            return Changes()
        LOG.debug("%s", event)
        return self.view.apply(event, utcnow())

    def _resync(self) -> None:
        if self.cfg.resync_interval <= 0:
            return
        now = time.monotonic()
        for router in list(self.view.resync_wanted):
            due = self._resync_due.setdefault(
                router,
                max(
                    now + RESYNC_DELAY, self._last_resync.get(router, 0) + self.cfg.resync_interval
                ),
            )
            if now < due:
                continue
            self._resync_due.pop(router)
            self._last_resync[router] = now
            self.view.resyncing(router, utcnow())
            if pmbmpd.close_session(self.cfg.bind_port, router):
                self.counters["resyncs"] += 1
                LOG.info("router %s: unconfirmed post-policy paths; asked for a fresh dump",
                         router)  # fmt: skip
            else:
                self.view.resync_failed(router)
                LOG.warning("router %s: could not close its BMP session (ss -K)", router)
