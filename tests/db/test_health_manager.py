"""The health manager on a real database and a real UDP socket (loopback): heartbeats recorded,
bad ones dropped and counted, stale amphorae failed over once, mass outages stopped by the
circuit breaker."""

from __future__ import annotations

import datetime
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError
from sqlalchemy import select, update

from l3dist.common import constants as c
from l3dist.common.config import HealthConfig
from l3dist.contracts.heartbeat import MAX_DATAGRAM, Heartbeat, encode
from l3dist.db import hosts as host_pool
from l3dist.db import jobs
from l3dist.db.models import (
    Amphora,
    AmphoraHealth,
    AmphoraHost,
    BmpPeer,
    BmpRouter,
    Listener,
    LoadBalancer,
    Pool,
    WorkerJob,
    utcnow,
)
from l3dist.db.session import Database, upgrade
from l3dist.health.manager import MAX_HOST_RETRIES, HealthManager
from l3dist_lab.controlplane import free_port

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture
def db(db_url: str) -> Database:
    upgrade(db_url)
    database = Database(db_url)
    with database.session() as s:
        for lb in ("lb1", "lb2"):
            s.add(LoadBalancer(id=lb, project_id="p", provisioning_status=c.ACTIVE,
                               operating_status=c.ONLINE, enabled=True,
                               topology=c.TOPOLOGY_ACTIVE_ACTIVE, amphora_count=3))  # fmt: skip
        s.flush()
        for i in range(6):
            s.add(Amphora(id=f"a{i}", status=c.AMPHORA_ALLOCATED,
                          load_balancer_id="lb1" if i < 3 else "lb2"))  # fmt: skip
        s.flush()
        s.add(Listener(id="L1", project_id="p", provisioning_status=c.ACTIVE,
                       operating_status=c.ONLINE, enabled=True, protocol="HTTP",
                       protocol_port=80, load_balancer_id="lb1"))  # fmt: skip
        s.add(Pool(id="P1", project_id="p", provisioning_status=c.ACTIVE,
                   operating_status=c.ONLINE, enabled=True, protocol="HTTP",
                   lb_algorithm="ROUND_ROBIN", load_balancer_id="lb1"))  # fmt: skip
    return database


@pytest.fixture
def manager(db: Database) -> Iterator[HealthManager]:
    config = HealthConfig(bind_host="127.0.0.1", bind_port=free_port(), heartbeat_timeout=2,
                          failover_threshold=3)  # fmt: skip
    hm = HealthManager(config, db, KEY)
    thread = threading.Thread(target=hm.receive_forever, daemon=True)
    thread.start()
    try:
        yield hm
    finally:
        hm.stop()
        thread.join(timeout=5)
        hm.close()


def send(hm: HealthManager, datagram: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(datagram, ("127.0.0.1", hm.config.bind_port))


def beat(
    amphora_id: str, seq: int, sent_at: float | None = None, **statuses: dict[str, Any]
) -> Heartbeat:
    return Heartbeat.model_validate({"amphora_id": amphora_id, "seq": seq,
                                     "sent_at": time.time() if sent_at is None else sent_at,
                                     **statuses})  # fmt: skip


def settle(hm: HealthManager, total: int) -> None:
    deadline = time.monotonic() + 10
    while hm.counters.received + sum(hm.counters.dropped.values()) < total:
        assert time.monotonic() < deadline, hm.counters
        time.sleep(0.02)


def health(db: Database) -> dict[str, datetime.datetime]:
    with db.session(writer=False) as s:
        return {h.amphora_id: h.last_update for h in s.scalars(select(AmphoraHealth))}


def test_heartbeats_are_recorded_and_bad_ones_counted(manager: HealthManager, db: Database) -> None:
    good = encode(beat("a0", 10), KEY)
    send(manager, good)
    settle(manager, 1)
    assert set(health(db)) == {"a0"}
    before = health(db)
    bad = {
        "bad_signature": encode(beat("a1", 1), b"another key"),
        "replayed": good,
        "stale": encode(beat("a1", 2, sent_at=time.time() - 600), KEY),
        "unsigned": b"hello",
        "oversized": b"x" * (MAX_DATAGRAM + 1),
        "malformed": b"\x00" * 40,
    }
    for datagram in bad.values():
        send(manager, datagram)
    settle(manager, 1 + len(bad))
    assert manager.counters.received == 1
    # An unsigned blob of 40 bytes fails the signature check first.
    assert manager.counters.dropped == {"bad_signature": 2, "replayed": 1, "stale": 1,
                                        "unsigned": 1, "oversized": 1}  # fmt: skip
    assert health(db) == before
    metrics = generate_latest(manager.registry).decode()
    assert 'l3dist_heartbeats_dropped_total{reason="replayed"} 1.0' in metrics
    assert "l3dist_heartbeats_received_total 1.0" in metrics
    send(manager, encode(beat("a0", 11), KEY))  # still alive and listening
    settle(manager, 2 + len(bad))
    assert manager.counters.received == 2


def test_flow_rescue_packets_are_exported_per_amphora(manager: HealthManager) -> None:
    rescue = {"flows": 5, "rescued": 40, "copies": 42, "not_ours": 7, "dead_owner": 3}
    send(manager, encode(beat("a0", 1, flow_rescue=rescue), KEY))
    send(manager, encode(beat("a1", 1), KEY))  # rescue off: no series
    settle(manager, 2)
    metrics = generate_latest(manager.registry).decode()
    for kind, packets in rescue.items():
        line = f'l3dist_flow_rescue_total{{amphora_id="a0",kind="{kind}"}} {packets}.0'
        assert line in metrics, metrics
    assert 'amphora_id="a1"' not in metrics
    with pytest.raises(ValidationError):
        beat("a0", 2, flow_rescue={"made_up": 1})


def age(db: Database, amphora_ids: list[str], seconds: float = 60) -> None:
    when = utcnow() - datetime.timedelta(seconds=seconds)
    with db.session() as s:
        for amphora_id in amphora_ids:
            s.merge(AmphoraHealth(amphora_id=amphora_id, last_update=when, busy=False))


def failover_jobs(db: Database) -> list[tuple[str, str]]:
    with db.session(writer=False) as s:
        return [(j.target_id, j.arguments["amphora_id"]) for j in s.scalars(
            select(WorkerJob).where(WorkerJob.flow == jobs.FAILOVER_AMPHORA))]  # fmt: skip


def test_a_stale_amphora_is_failed_over_once(manager: HealthManager, db: Database) -> None:
    age(db, ["a1"])
    age(db, ["a0", "a2"], seconds=0)
    assert manager.check() == ["a1"]
    assert failover_jobs(db) == [("lb1", "a1")]
    with db.session(writer=False) as s:
        lb = s.get(LoadBalancer, "lb1")
        assert lb is not None
        assert (lb.provisioning_status, lb.operating_status) == (c.PENDING_UPDATE, c.DEGRADED)
        assert s.get(AmphoraHealth, "a1").busy  # type: ignore[union-attr]
    # Claimed: a second check, or a second manager, starts nothing more.
    other = HealthManager(manager.config.model_copy(update={"bind_port": free_port()}), db, KEY)
    try:
        assert manager.check() == [] and other.check() == []
    finally:
        other.close()
    assert failover_jobs(db) == [("lb1", "a1")]


def test_the_fabric_losing_a_silent_amphora_fails_it_over_before_the_timeout(
    manager: HealthManager, db: Database
) -> None:
    """An amphora silent for fabric_down_timeout whose BGP sessions every connected router
    reported down since its last heartbeat is stale at once (a hung host: the routers' BFD
    knows within a second); a lost heartbeat with the sessions up, a session down since
    before the last heartbeat, one router still up, a router whose BMP session is down, or too
    short a silence, are not. The heartbeat timeout (30 s here) is not waited for."""
    config = manager.config.model_copy(update={"heartbeat_timeout": 30.0,
                                               "fabric_down_timeout": 1.5})  # fmt: skip
    hm = HealthManager(config.model_copy(update={"bind_port": free_port()}), db, KEY)
    now = utcnow()

    def ago(seconds: float) -> datetime.datetime:
        return now - datetime.timedelta(seconds=seconds)

    silence = {"a0": 2, "a1": 2, "a2": 2, "a3": 2, "a4": 0.5, "a5": 2}
    with db.session() as s:
        for amphora_id, quiet in silence.items():
            s.execute(update(Amphora).where(Amphora.id == amphora_id)
                      .values(lb_network_ip=f"10.0.0.{amphora_id[1]}"))  # fmt: skip
            s.merge(AmphoraHealth(amphora_id=amphora_id, last_update=ago(quiet), busy=False))
        for router, connected in (("r1", True), ("r2", True), ("r3", False)):
            s.add(BmpRouter(address=router, connected=connected))
        s.flush()
        for router, peer, up, since in (
            ("r1", "10.0.0.0", False, ago(1)),  # a0: down after its last heartbeat
            ("r2", "10.0.0.0", False, ago(1.2)),
            ("r1", "10.0.0.1", True, ago(60)),  # a1: only a heartbeat lost
            ("r1", "10.0.0.2", False, ago(60)),  # a2: down long before, still heartbeating
            ("r1", "10.0.0.3", False, ago(1)),  # a3: still up at r2
            ("r2", "10.0.0.3", True, ago(60)),
            ("r1", "10.0.0.4", False, ago(0.2)),  # a4: silent too short a time
            ("r3", "10.0.0.5", False, ago(1)),  # a5: known only to a router not connected
        ):
            s.add(BmpPeer(router_address=router, peer_address=peer, up=up, since=since))
    off = HealthManager(config.model_copy(update={"bind_port": free_port(),
                                                  "fabric_down_timeout": 0}), db, KEY)  # fmt: skip
    try:
        assert off.check() == [] and failover_jobs(db) == []  # heartbeats only: not yet
        assert hm.check() == ["a0"]
        assert failover_jobs(db) == [("lb1", "a0")]
    finally:
        hm.close()
        off.close()


def test_a_busy_load_balancer_waits(manager: HealthManager, db: Database) -> None:
    with db.session() as s:
        s.execute(update(LoadBalancer).where(LoadBalancer.id == "lb2")
                  .values(provisioning_status=c.PENDING_UPDATE))  # fmt: skip
    age(db, ["a3"])
    assert manager.check() == [] and failover_jobs(db) == []
    with db.session() as s:
        s.execute(update(LoadBalancer).where(LoadBalancer.id == "lb2")
                  .values(provisioning_status=c.ACTIVE))  # fmt: skip
    assert manager.check() == ["a3"]


def test_a_mass_outage_trips_the_circuit_breaker(manager: HealthManager, db: Database) -> None:
    age(db, ["a0", "a1", "a3", "a4"])  # 4 stale at once, threshold 3
    assert manager.check() == []
    assert failover_jobs(db) == [] and manager.counters.breaker_trips == 1
    with db.session(writer=False) as s:
        statuses = {a.id: a.status for a in s.scalars(select(Amphora))}
    assert [a for a, st in statuses.items() if st == c.FAILOVER_STOPPED] == ["a0", "a1", "a3", "a4"]
    # Heartbeats come back: the amphora recovers by itself, nothing was failed over.
    send(manager, encode(beat("a3", 1), KEY))
    settle(manager, 1)
    with db.session(writer=False) as s:
        assert s.get(Amphora, "a3").status == c.AMPHORA_ALLOCATED  # type: ignore[union-attr]
    assert manager.check() == [] and failover_jobs(db) == []


def statuses(db: Database) -> tuple[str, str]:
    with db.session(writer=False) as s:
        listener, pool = s.get(Listener, "L1"), s.get(Pool, "P1")
        assert listener is not None and pool is not None
        return listener.operating_status, pool.operating_status


def test_listener_and_pool_status_follow_what_the_amphorae_report(
    manager: HealthManager, db: Database
) -> None:
    sent = 0

    def report(seq: int, listener: dict[str, str], pool: dict[str, str]) -> None:
        nonlocal sent
        for amphora_id in ("a0", "a1", "a2"):
            up = amphora_id != "a2" or seq < 2
            send(manager, encode(beat(amphora_id, seq,
                                      listeners=listener if up else {"L1": "DOWN"},
                                      pools=pool if up else {"P1": "DOWN"}), KEY))  # fmt: skip
            sent += 1
        settle(manager, sent)

    report(1, {"L1": "UP"}, {"P1": "UP"})
    assert statuses(db) == (c.ONLINE, c.ONLINE)
    report(2, {"L1": "UP"}, {"P1": "UP"})  # a2 now reports both down
    assert statuses(db) == (c.DEGRADED, c.DEGRADED)
    report(3, {"L1": "DOWN"}, {"P1": "DOWN"})
    assert statuses(db) == (c.OFFLINE, c.ERROR)


def fence_jobs(db: Database) -> list[tuple[str, str, str]]:
    with db.session(writer=False) as s:
        return sorted(
            (j.flow, j.target_id, j.arguments.get("amphora_id", ""))
            for j in s.scalars(
                select(WorkerJob).where(WorkerJob.flow.in_((jobs.CLEAR_FENCE, jobs.RESET_HOST)))
            )
        )


def test_fenced_amphorae_are_cleared_or_their_hosts_reset(
    manager: HealthManager, db: Database
) -> None:
    """A fenced amphora still a member (a router outage, a long session flap, a mass outage
    the breaker held back) gets its fence cleared, once however often it says so; one whose
    amphora was replaced gets its host reset; one being failed over is left alone."""
    age(db, ["a0", "a1", "a3", "a4"])  # a mass outage: failover stopped
    assert manager.check() == []
    with db.session() as s:
        s.merge(AmphoraHealth(amphora_id="a5", last_update=utcnow(), busy=True))  # failing over
        s.execute(update(Amphora).where(Amphora.id == "a2").values(status=c.DELETED))
    sent = 0
    for seq in (1, 2, 3):
        for amphora_id, host in (("a0", "h0"), ("a1", "h1"), ("a5", "h5"), ("a2", "h2")):
            send(manager, encode(beat(amphora_id, seq, fenced=True, host_id=host), KEY))
            sent += 1
    settle(manager, sent)
    assert fence_jobs(db) == [
        (jobs.CLEAR_FENCE, "lb1", "a0"),
        (jobs.CLEAR_FENCE, "lb1", "a1"),
        (jobs.RESET_HOST, "h2", ""),
    ]
    with db.session(writer=False) as s:
        assert s.get(Amphora, "a0").status == c.AMPHORA_ALLOCATED  # type: ignore[union-attr]
        assert s.get(AmphoraHealth, "a5").busy  # type: ignore[union-attr]


def test_unreachable_hosts_are_tried_again_a_few_at_a_time(
    manager: HealthManager, db: Database
) -> None:
    """UNREACHABLE hosts holding nothing get reset jobs (the worker offers one again if its
    agent answers clean), at most MAX_HOST_RETRIES waiting at once (a silent host holds a
    worker for the reset's timeout); a retry while they wait queues nothing more; available
    and allocated hosts are left alone."""
    with db.session() as s:
        for name, status, amphora_id in (
            ("away-1", host_pool.UNREACHABLE, None),
            ("away-2", host_pool.UNREACHABLE, None),
            ("away-3", host_pool.UNREACHABLE, None),
            ("free", host_pool.AVAILABLE, None),
            ("busy", host_pool.ALLOCATED, "a0"),
        ):
            s.add(AmphoraHost(id=name, name=name, status=status, amphora_id=amphora_id))
    assert MAX_HOST_RETRIES == 2
    first = manager.retry_unreachable_hosts()
    assert len(first) == 2 and set(first) <= {"away-1", "away-2", "away-3"}
    assert manager.retry_unreachable_hosts() == []
    assert [target for _, target, _ in fence_jobs(db)] == sorted(first)
    with db.session() as s:
        s.execute(update(WorkerJob).values(state=c.JOB_DONE))
    assert len(manager.retry_unreachable_hosts()) == 2
    assert {target for _, target, _ in fence_jobs(db)} == {"away-1", "away-2", "away-3"}
