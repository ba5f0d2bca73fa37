"""Listener statistics from heartbeats: HAProxy's counters made into totals that survive
reloads, agent restarts and more than one health manager.

A heartbeat carries, per listener, what the amphora's HAProxy worker counted since it started
and that worker's pid. A reload (every configuration push) starts a new worker from zero. So
each (listener, amphora) row keeps the last sample it added, and a new sample adds:

- its whole count when the worker changed (a new worker) or there was no sample before;
- the growth since the last sample otherwise (0 when the same heartbeat comes again, from a
  second health manager or a repeated datagram).

What an old worker counts after the reload, on connections it still serves, is not seen: HAProxy
2.6 does not report it on the new worker's socket.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from l3dist.contracts.heartbeat import Heartbeat, ListenerCounters
from l3dist.db.models import Listener, ListenerStatistics

TOTALS = ("bytes_in", "bytes_out", "total_connections", "request_errors")


def added(
    previous: Mapping[str, Any] | None, counters: ListenerCounters, worker: int | None
) -> dict[str, int]:
    """What a sample adds to the totals, after previous (the last sample added, or None)."""
    now = {name: getattr(counters, name) for name in TOTALS}
    if previous is None or previous.get("worker") != worker:
        return now
    growth = {name: now[name] - int(previous.get(name, 0)) for name in TOTALS}
    if worker is None and any(value < 0 for value in growth.values()):
        return now  # no worker id to tell by: a decrease is a restart
    return {name: max(0, value) for name, value in growth.items()}


def record(session: Session, heartbeat: Heartbeat, now: datetime.datetime) -> None:
    """Add a heartbeat's listener counters to the listener_statistics rows (locked for the
    update: two health managers add each sample once)."""
    for listener_id, counters in heartbeat.listener_stats.items():
        if session.get(Listener, listener_id) is None:
            continue  # the agent's default frontend, or a listener being deleted
        key = (listener_id, heartbeat.amphora_id)
        row = session.get(ListenerStatistics, key, with_for_update=True)
        if row is None:
            row = ListenerStatistics(
                listener_id=listener_id,
                amphora_id=heartbeat.amphora_id,
                bytes_in=0,
                bytes_out=0,
                total_connections=0,
                request_errors=0,
                sample={},
            )
            session.add(row)
            previous = None
        else:
            previous = row.sample
        sample = {"worker": heartbeat.haproxy_worker, **counters.model_dump(include=set(TOTALS))}
        if previous == sample and row.active_connections == counters.active_connections:
            continue  # an idle listener: nothing to write (heartbeats come every second)
        for name, value in added(previous, counters, heartbeat.haproxy_worker).items():
            setattr(row, name, getattr(row, name) + value)
        row.active_connections = counters.active_connections
        row.sample = sample
        row.updated_at = now
