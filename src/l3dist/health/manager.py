"""The health manager (``l3dist health``): receives the agents' heartbeats and fails over the
amphorae that stop sending them.

- Receiver: one UDP socket; a valid, fresh heartbeat updates ``amphora_health.last_update``
  (and brings a FAILOVER_STOPPED amphora back to ALLOCATED); anything else is dropped and counted
  by reason. Nothing a datagram holds can raise out of the loop.
- Checker: every ``health_check_interval``, the ALLOCATED amphorae whose last heartbeat is older
  than ``heartbeat_timeout`` are stale; so are those silent for ``fabric_down_timeout`` whose
  BGP sessions the routers reported down over BMP since their last heartbeat (the fabric
  knows a hung host within a BFD interval; one lost heartbeat alone never fails one over).
  More of them at once than ``failover_threshold`` trips the
  circuit breaker: they become FAILOVER_STOPPED and nothing is failed over. Otherwise each is
  claimed with ``busy`` (a conditional UPDATE: two health managers never fail over the same
  amphora), its load balancer goes PENDING_UPDATE / DEGRADED and a failover job is queued for
  the worker, as the API's failover action does.
"""

from __future__ import annotations

import datetime
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from l3dist.common import constants as c
from l3dist.common.config import HealthConfig
from l3dist.contracts.heartbeat import (
    MAX_DATAGRAM,
    Heartbeat,
    HeartbeatRefused,
    ReplayGuard,
    decode,
)
from l3dist.db import hosts as host_pool
from l3dist.db import jobs
from l3dist.db.models import (
    Amphora,
    AmphoraHealth,
    BmpPeer,
    BmpRouter,
    Distributor,
    Listener,
    LoadBalancer,
    Pool,
    utcnow,
)
from l3dist.db.session import Database
from l3dist.health import statistics

log = logging.getLogger(__name__)
METRICS_FORGET_AFTER = 60.0  # seconds without a heartbeat before an amphora's series go


@dataclass
class Counters:
    """What the manager saw; also exported as Prometheus metrics."""

    received: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    failovers: int = 0
    breaker_trips: int = 0
    fence_jobs: int = 0  # clear-fence and reset-host jobs queued for fenced amphorae

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class CountersCollector(Collector):
    """The counters as Prometheus metrics (``[health] metrics_port`` on ``[metrics] bind_host``),
    with each amphora's flow-rescue packet totals from its latest heartbeat."""

    def __init__(
        self, counters: Counters, reports: dict[str, tuple[float, Heartbeat]] | None = None
    ) -> None:
        self.counters = counters
        self.reports = reports if reports is not None else {}

    def collect(self) -> Iterator[CounterMetricFamily]:
        c = self.counters
        yield CounterMetricFamily(
            "l3dist_heartbeats_received", "Valid heartbeats recorded", value=c.received
        )
        dropped = CounterMetricFamily(
            "l3dist_heartbeats_dropped", "Datagrams refused, by reason", labels=["reason"]
        )
        for reason, count in sorted(c.dropped.items()):
            dropped.add_metric([reason], count)
        yield dropped
        yield CounterMetricFamily(
            "l3dist_failovers_started", "Failovers queued for stale amphorae", value=c.failovers
        )
        yield CounterMetricFamily(
            "l3dist_failover_circuit_breaker_trips",
            "Checks that found too many stale amphorae at once",
            value=c.breaker_trips,
        )
        rescue = CounterMetricFamily(
            "l3dist_flow_rescue",
            "Flow rescue in each amphora: flows the fabric moved here (flows); packets of them "
            "(rescued), copies sent to peers (copies), peers' copies dropped as not ours "
            "(not_ours), segments let through to reset a flow whose owner is dead "
            "(dead_owner), owner answers sent (owner_feedback) and received (owner_learned)",
            labels=["amphora_id", "kind"],
        )
        heard_since = time.monotonic() - METRICS_FORGET_AFTER
        for amphora_id, (at, heartbeat) in sorted(list(self.reports.items())):
            if at < heard_since:
                continue  # gone (deleted, replaced): no more series for it
            for kind, packets in sorted(heartbeat.flow_rescue.items()):
                rescue.add_metric([amphora_id, kind], packets)
        yield rescue


def _combined(reports: list[Heartbeat], kind: str, object_id: str, none_up: str) -> str:
    seen = [getattr(hb, kind)[object_id] for hb in reports if object_id in getattr(hb, kind)]
    up = seen.count("UP")
    return c.ONLINE if up == len(seen) else (c.DEGRADED if up else none_up)


def _owner(amphora: Amphora) -> tuple[str, str, Any] | None:
    """The failover flow for the amphora, its job's target, and the statement that takes its
    owner (ACTIVE only) out of service meanwhile: a load balancer's amphora, or a dedicated
    distributor's amphora; None for one that belongs to nothing."""
    if amphora.load_balancer_id is not None:
        lb = update(LoadBalancer).where(
            LoadBalancer.id == amphora.load_balancer_id,
            LoadBalancer.provisioning_status == c.ACTIVE,
        )
        values = {"provisioning_status": c.PENDING_UPDATE, "operating_status": c.DEGRADED}
        return jobs.FAILOVER_AMPHORA, amphora.load_balancer_id, lb.values(**values)
    if amphora.distributor_id is not None:
        distributor = update(Distributor).where(
            Distributor.id == amphora.distributor_id, Distributor.status == c.ACTIVE
        )
        flow = jobs.FAILOVER_DISTRIBUTOR_AMPHORA
        return flow, amphora.distributor_id, distributor.values(status=c.PENDING_UPDATE)
    return None


class _NotNow(Exception):
    """The amphora is claimed by another manager, or its load balancer is busy."""


MAX_HOST_RETRIES = 2  # reset jobs for UNREACHABLE hosts waiting or running at once


class HealthManager:
    def __init__(
        self, config: HealthConfig, db: Database, key: bytes, metrics_host: str = "127.0.0.1"
    ) -> None:
        self.config = config
        self.metrics_host = metrics_host
        self.db = db
        self.key = key
        self.guard = ReplayGuard()
        # amphora id -> (when, its last heartbeat): listener and pool status over all amphorae
        self.reports: dict[str, tuple[float, Heartbeat]] = {}
        self.counters = Counters()
        self.registry = CollectorRegistry()
        self.registry.register(CountersCollector(self.counters, self.reports))
        self.stopping = threading.Event()
        self.sock = socket.socket(
            socket.AF_INET6 if ":" in config.bind_host else socket.AF_INET, socket.SOCK_DGRAM
        )
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((config.bind_host, config.bind_port))
        self.sock.settimeout(0.2)

    # -- receiving ----------------------------------------------------------------------------

    def receive_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                datagram, _ = self.sock.recvfrom(MAX_DATAGRAM + 1)
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                raise
            self.handle(datagram)

    def handle(self, datagram: bytes) -> None:
        try:
            heartbeat = decode(datagram, self.key)
            self.guard.check(heartbeat)
        except HeartbeatRefused as refused:
            self.counters.drop(refused.reason)
            return
        try:
            self._record(heartbeat)
        except Exception:  # the database is away: the next heartbeat tries again
            log.exception("cannot record a heartbeat of amphora %s", heartbeat.amphora_id)
            self.counters.drop("database")
            return
        self.counters.received += 1

    def _record(self, heartbeat: Heartbeat) -> None:
        amphora_id = heartbeat.amphora_id
        now = utcnow()
        self.reports[amphora_id] = (time.monotonic(), heartbeat)
        try:
            with self.db.session(writer=True) as session:
                amphora = session.get(Amphora, amphora_id)
                if amphora is None or amphora.status == c.DELETED:
                    if heartbeat.fenced and heartbeat.host_id:
                        self._queue(session, jobs.RESET_HOST, heartbeat.host_id)
                    return  # an amphora being deleted, or not ours
                health = session.get(AmphoraHealth, amphora_id)
                if heartbeat.fenced:
                    # A load balancer's amphora, or a dedicated distributor's: the jobs of its
                    # owner run one at a time.
                    owner = amphora.load_balancer_id or amphora.distributor_id
                    if (health is not None and health.busy) or owner is None:
                        return  # being failed over: it stays fenced, its host is reset after
                    self._queue(session, jobs.CLEAR_FENCE, owner, amphora_id=amphora_id)
                rescue = {str(k): v for k, v in heartbeat.flow_rescue.items()} or None
                if health is None:
                    session.add(AmphoraHealth(amphora_id=amphora_id, last_update=now, busy=False,
                                              flow_rescue=rescue))  # fmt: skip
                else:
                    health.last_update = now
                    if health.flow_rescue != rescue:
                        health.flow_rescue = rescue
                if amphora.status == c.FAILOVER_STOPPED:  # back after an outage
                    amphora.status = c.AMPHORA_ALLOCATED
                    log.info("amphora %s is heard again: ALLOCATED", amphora_id)
                self._update_statuses(session, heartbeat)
                statistics.record(session, heartbeat, now)
        except IntegrityError:  # another manager added the row first
            pass

    def _queue(self, session: Session, flow: str, target_id: str, **arguments: str) -> None:
        """Queue a fencing job unless the same one waits or runs (heartbeats come every
        second; one job is enough)."""
        if jobs.submit_once(session, flow, target_id, **arguments) is None:
            return
        self.counters.fence_jobs += 1
        log.warning("fenced amphora %s: %s queued for %s", arguments.get("amphora_id", ""),
                    flow, target_id)  # fmt: skip

    def _update_statuses(self, session: Session, heartbeat: Heartbeat) -> None:
        """Listener and pool operating status from what every amphora heard lately reports:
        ONLINE when UP on all, DEGRADED on some, OFFLINE (listener) / ERROR (pool) on none."""
        fresh_since = time.monotonic() - self.config.heartbeat_timeout
        reports = [hb for at, hb in list(self.reports.values()) if at >= fresh_since]
        for listener_id in heartbeat.listeners:
            listener = session.get(Listener, listener_id)
            if listener is not None and listener.enabled:
                status = _combined(reports, "listeners", listener_id, c.OFFLINE)
                if listener.operating_status != status:
                    listener.operating_status = status
        for pool_id in heartbeat.pools:
            pool = session.get(Pool, pool_id)
            if pool is not None and pool.enabled:
                status = _combined(reports, "pools", pool_id, c.ERROR)
                if pool.operating_status != status:
                    pool.operating_status = status

    # -- checking -----------------------------------------------------------------------------

    def check_forever(self) -> None:
        next_retry = time.monotonic() + self.config.unreachable_host_retry_interval
        while not self.stopping.wait(self.config.health_check_interval):
            try:
                self.check()
                if time.monotonic() >= next_retry:
                    next_retry = time.monotonic() + self.config.unreachable_host_retry_interval
                    self.retry_unreachable_hosts()
            except Exception:
                log.exception("health check failed")

    def retry_unreachable_hosts(self) -> list[str]:
        """A reset job for every UNREACHABLE host (one that did not answer a build or a
        reset): the worker resets it through its agent, and one that answers clean is
        AVAILABLE again; one still silent stays out. Returns the hosts a job was queued for."""
        queued: list[str] = []
        with self.db.session(writer=True) as session:
            # A silent host holds a worker for the reset's timeout: a few at a time, so a
            # rack that lost power does not keep every worker from creates and failovers.
            room = MAX_HOST_RETRIES - jobs.waiting(session, jobs.RESET_HOST)
            tried = jobs.last_submitted(session, jobs.RESET_HOST)
            # The least recently tried first, so every silent host gets its turn.
            hosts = sorted(host_pool.unreachable(session), key=lambda h: (h in tried, tried.get(h)))
            for host_id in hosts:
                if len(queued) >= room:
                    break
                if jobs.submit_once(session, jobs.RESET_HOST, host_id) is not None:
                    queued.append(host_id)
        if queued:
            log.info("unreachable amphora hosts tried again: %s", ", ".join(queued))
        return queued

    def check(self) -> list[str]:
        """Fail over stale amphorae (or trip the breaker); the ids failed over."""
        now = utcnow()
        stale_before = now - datetime.timedelta(seconds=self.config.heartbeat_timeout)
        with self.db.session(writer=True) as session:
            stale = list(
                session.scalars(
                    select(Amphora.id)
                    .join(AmphoraHealth, AmphoraHealth.amphora_id == Amphora.id)
                    .where(
                        Amphora.status == c.AMPHORA_ALLOCATED,
                        AmphoraHealth.last_update < stale_before,
                        AmphoraHealth.busy.is_(False),
                    )
                )
            )
            stale += [a for a in self._fabric_lost(session, now) if a not in stale]
            if len(stale) > self.config.failover_threshold:
                session.execute(
                    update(Amphora).where(Amphora.id.in_(stale)).values(status=c.FAILOVER_STOPPED)
                )
                self.counters.breaker_trips += 1
                log.warning(
                    "%d amphorae stale at once (threshold %d): failover stopped for %s",
                    len(stale), self.config.failover_threshold, ", ".join(stale),
                )  # fmt: skip
                return []
        started = [a for a in stale if self._fail_over(a)]
        self.counters.failovers += len(started)
        return started

    def _fabric_lost(self, session: Session, now: datetime.datetime) -> list[str]:
        """The silent amphorae (no heartbeat for ``fabric_down_timeout``) the fabric lost too:
        every connected router that knows their BGP session (by the amphora's lb-network
        address) holds it down, and at least one went down after their last heartbeat."""
        if not self.config.fabric_down_timeout:
            return []
        quiet_before = now - datetime.timedelta(seconds=self.config.fabric_down_timeout)
        silent = session.execute(
            select(Amphora.id, Amphora.lb_network_ip, AmphoraHealth.last_update)
            .join(AmphoraHealth, AmphoraHealth.amphora_id == Amphora.id)
            .where(
                Amphora.status == c.AMPHORA_ALLOCATED,
                AmphoraHealth.last_update < quiet_before,
                AmphoraHealth.busy.is_(False),
                Amphora.lb_network_ip.is_not(None),
            )
        ).all()
        if not silent:
            return []
        addresses = [str(ip) for _, ip, _ in silent]
        sessions: dict[str, list[tuple[bool, datetime.datetime]]] = {}
        for peer, up, since in session.execute(
            select(BmpPeer.peer_address, BmpPeer.up, BmpPeer.since)
            .join(BmpRouter, BmpRouter.address == BmpPeer.router_address)
            .where(BmpRouter.connected.is_(True), BmpPeer.peer_address.in_(addresses))
        ):
            sessions.setdefault(peer, []).append((up, since))
        lost = []
        for amphora_id, lb_network_ip, last_update in silent:
            seen = sessions.get(str(lb_network_ip), [])
            if seen and not any(up for up, _ in seen) and max(s for _, s in seen) > last_update:
                lost.append(amphora_id)
        if lost:
            log.warning("amphorae silent and their BGP sessions down at the routers: %s",
                        ", ".join(lost))  # fmt: skip
        return lost

    def _fail_over(self, amphora_id: str) -> bool:
        """Claim the amphora and queue its failover; False when its owner (its load balancer,
        or a dedicated distributor for a distributor amphora) is busy (the next check tries
        again) or another manager claimed it."""
        try:
            with self.db.session(writer=True) as session:
                amphora = session.get(Amphora, amphora_id)
                if amphora is None:
                    return False
                claim = update(AmphoraHealth).where(
                    AmphoraHealth.amphora_id == amphora_id, AmphoraHealth.busy.is_(False)
                )
                found = _owner(amphora)
                if found is None:
                    return False
                flow, target, owner = found
                for statement in (claim.values(busy=True), owner):
                    result = session.execute(statement.execution_options(synchronize_session=False))
                    if getattr(result, "rowcount", 0) != 1:
                        raise _NotNow  # rolls both back
                jobs.submit(session, flow, target, amphora_id=amphora_id)
        except _NotNow:
            return False
        log.warning("amphora %s of %s is stale: failover queued", amphora_id, target)
        return True

    # -- life ---------------------------------------------------------------------------------

    def run_forever(self) -> None:
        if self.config.metrics_port:
            start_http_server(
                self.config.metrics_port, addr=self.metrics_host, registry=self.registry
            )
        checker = threading.Thread(target=self.check_forever, name="health-check", daemon=True)
        checker.start()
        self.receive_forever()
        checker.join(timeout=5)

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        self.sock.close()
