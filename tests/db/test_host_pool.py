"""The amphora host pool's claim (SQLite and PostgreSQL): workers claiming at once never share a
host; disabled, unreachable and unenrolled hosts are never given; an empty pool says why."""

from __future__ import annotations

import threading

import pytest

from l3dist.db import hosts
from l3dist.db.models import Amphora, AmphoraHost
from l3dist.db.session import Database, upgrade


def _pool(db: Database, available: int, **others: int) -> None:
    with db.session() as s:
        for i in range(available):
            s.add(AmphoraHost(name=f"host-{i:02}", status=hosts.AVAILABLE, enabled=True))
        for status, count in others.items():
            for i in range(count):
                enabled = status != "disabled"
                s.add(
                    AmphoraHost(
                        name=f"{status}-{i}",
                        status=hosts.AVAILABLE if status == "disabled" else status.upper(),
                        enabled=enabled,
                    )
                )


def _amphorae(db: Database, count: int) -> list[str]:
    with db.session() as s:
        rows = [Amphora(status="PENDING_CREATE") for _ in range(count)]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def test_concurrent_claims_never_share_a_host(db_url: str) -> None:
    upgrade(db_url)
    db = Database(db_url)
    _pool(db, 6, disabled=2, unreachable=1, pending_enrollment=1)
    amphorae = _amphorae(db, 8)
    got: dict[str, str] = {}
    refused: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(amphorae))

    def claim(amphora_id: str) -> None:
        start.wait()
        try:
            with db.session() as s:
                host = hosts.claim(s, amphora_id)
                with lock:
                    got[amphora_id] = host.id
        except hosts.NoFreeHost as exc:
            with lock:
                refused.append(str(exc))

    threads = [threading.Thread(target=claim, args=(a,)) for a in amphorae]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(got) == 6 and len(set(got.values())) == 6  # distinct hosts
    assert len(refused) == 2
    assert "no free amphora host" in refused[0] and "6 allocated" in refused[0]
    assert "2 disabled" in refused[0] and "1 unreachable" in refused[0]
    with db.session() as s:
        allocated = {
            h.id: h.amphora_id
            for h in s.query(AmphoraHost).filter(AmphoraHost.status == hosts.ALLOCATED)
        }
    assert allocated == {host: amp for amp, host in got.items()}


def test_a_released_host_is_offered_again_an_unreachable_one_is_not(db_url: str) -> None:
    upgrade(db_url)
    db = Database(db_url)
    _pool(db, 2)
    first, second, third = _amphorae(db, 3)
    with db.session() as s:
        a = hosts.claim(s, first).id
        b = hosts.claim(s, second).id
        hosts.release(s, a)
        hosts.release(s, b, hosts.UNREACHABLE)
    with db.session() as s:
        assert hosts.claim(s, third).id == a
        assert hosts.holding(s, third) is not None
    with db.session() as s, pytest.raises(hosts.NoFreeHost, match="1 unreachable"):
        hosts.claim(s, first)
