"""Listener statistics: heartbeats' HAProxy counters recorded by the real health manager, read
back through Octavia's ``/stats`` calls and the statuses answer; totals kept across HAProxy
reloads (a new worker) and counted once when two health managers hear the same heartbeat."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import update

from l3dist.common import constants as c
from l3dist.common.config import HealthConfig
from l3dist.contracts.heartbeat import Heartbeat, encode
from l3dist.db.models import Amphora
from l3dist.health.manager import HealthManager
from l3dist_lab.controlplane import free_port
from tests.api.conftest import ADMIN, TENANT_A, TENANT_B, Api

KEY = b"0123456789abcdef0123456789abcdef"


def manager(api: Api) -> HealthManager:
    config = HealthConfig(bind_host="127.0.0.1", bind_port=free_port())
    return HealthManager(config, api.db, KEY)


def heartbeat(amphora_id: str, seq: int, worker: int, **counters: dict[str, int]) -> bytes:
    beat = Heartbeat.model_validate(
        {
            "amphora_id": amphora_id,
            "seq": seq,
            "sent_at": time.time(),
            "listeners": dict.fromkeys(counters, "UP"),
            "listener_stats": counters,
            "haproxy_worker": worker,
        }
    )
    return encode(beat, KEY)


def counts(active: int, total: int, bytes_in: int, bytes_out: int, errors: int = 0) -> Any:
    return {"active_connections": active, "total_connections": total, "bytes_in": bytes_in,
            "bytes_out": bytes_out, "request_errors": errors}  # fmt: skip


def stats(api: Api, path: str, headers: dict[str, str] = TENANT_A) -> dict[str, int]:
    answer = api.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["stats"])


def test_counters_become_totals_across_reloads_and_managers(api: Api) -> None:
    api.active_distributor(api.worker)
    lb = api.create_lb(TENANT_A, amphora_count=2)
    listener = api.create("/v2/lbaas/listeners", "listener", TENANT_A,
                          loadbalancer_id=lb["id"], protocol="TCP", protocol_port=80)  # fmt: skip
    amphorae = api.get(f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}").json()["amphorae"]
    first, second = sorted(a["id"] for a in amphorae)
    path = f"/v2/lbaas/listeners/{listener['id']}/stats"
    assert stats(api, path) == counts(0, 0, 0, 0)  # nothing heard yet: zeros, not 404

    hm, other_hm = manager(api), manager(api)
    try:
        lid = listener["id"]
        hm.handle(heartbeat(first, 1, 100, **{lid: counts(2, 10, 1000, 5000, 1)}))
        hm.handle(heartbeat(second, 1, 200, **{lid: counts(1, 4, 400, 800)}))
        assert stats(api, path) == counts(3, 14, 1400, 5800, 1)
        # The same heartbeat at a second health manager adds nothing.
        other_hm.handle(heartbeat(first, 1, 100, **{lid: counts(2, 10, 1000, 5000, 1)}))
        assert stats(api, path) == counts(3, 14, 1400, 5800, 1)
        # Growth of the same worker adds the difference...
        other_hm.handle(heartbeat(first, 2, 100, **{lid: counts(1, 12, 1300, 6000, 1)}))
        assert stats(api, path) == counts(2, 16, 1700, 6800, 1)
        # ...a reload (a new worker, counting from zero again) adds its whole count.
        hm.handle(heartbeat(first, 3, 101, **{lid: counts(0, 3, 50, 70)}))
        assert stats(api, path) == counts(1, 19, 1750, 6870, 1)
        # An unknown listener (the agent's default frontend) is ignored.
        hm.handle(heartbeat(second, 2, 200, vip_http=counts(5, 5, 5, 5)))
        assert stats(api, path) == counts(1, 19, 1750, 6870, 1)
    finally:
        hm.close()
        other_hm.close()

    # The load balancer's stats sum its listeners'.
    assert stats(api, f"/v2/lbaas/loadbalancers/{lb['id']}/stats") == counts(1, 19, 1750, 6870, 1)
    # The statuses answer carries them in update_listener_statistics' shape.
    [entry] = api.get("/v2/lbaas/statuses", headers=TENANT_A).json()["statuses"]
    assert entry["listener_statistics"] == [{"id": lid, **counts(1, 19, 1750, 6870, 1)}]

    # A gone amphora's totals stay; its connections are no longer active.
    with api.db.session() as session:
        session.execute(update(Amphora).where(Amphora.id == first).values(status=c.DELETED))
    assert stats(api, path) == counts(1, 19, 1750, 6870, 1)
    with api.db.session() as session:
        session.execute(update(Amphora).where(Amphora.id == second).values(status=c.DELETED))
    assert stats(api, path) == counts(0, 19, 1750, 6870, 1)


def test_stats_are_scoped_as_shows_are(api: Api) -> None:
    api.active_distributor(api.worker)
    lb = api.create_lb(TENANT_A)
    listener = api.create("/v2/lbaas/listeners", "listener", TENANT_A,
                          loadbalancer_id=lb["id"], protocol="TCP", protocol_port=80)  # fmt: skip
    for path in (f"/v2/lbaas/listeners/{listener['id']}/stats",
                 f"/v2/lbaas/loadbalancers/{lb['id']}/stats"):  # fmt: skip
        assert api.get(path, headers=TENANT_B).status_code == 404
        assert api.get(path, headers=ADMIN).status_code == 200
    missing = api.get("/v2/lbaas/listeners/nope/stats", headers=TENANT_A)
    assert missing.status_code == 404 and "nope" in missing.text
