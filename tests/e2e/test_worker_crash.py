"""The worker is killed (SIGKILL) in the middle of a load balancer create: the restarted worker
resumes the flow from the database, the load balancer ends ACTIVE with exactly its amphorae on
exactly as many hosts, and nothing the dead worker started leaks (a host claimed, an
amphora-haproxy namespace or daemon on a host, a port or address)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from sqlalchemy import select

from l3dist.db.models import NetPort, WorkerJob
from l3dist.db.session import Database
from l3dist_lab import hosts, plumbing
from l3dist_lab.traffic import run_clients
from tests.e2e.conftest import (
    Controller,
    add_web_service,
    amphorae_of,
    delete_lb,
    lb_path,
    wait_for_ecmp,
    wait_until,
)


def amphora_namespaces(ctl: Controller) -> set[str]:
    """The hosts' amphora-haproxy namespaces (an agent makes one when given an amphora)."""
    present = set(plumbing.list_namespaces())
    return {h.haproxy_namespace for h in ctl.site.hosts} & present


def job_of(db: Database, lb_id: str) -> WorkerJob:
    with db.session(writer=False) as session:
        return session.scalars(select(WorkerJob).where(WorkerJob.target_id == lb_id)).one()


def building(ctl: Controller, lb_id: str) -> bool:
    """The first amphora is being started on its host."""
    return len(amphora_namespaces(ctl)) >= 1


def configuring(ctl: Controller, lb_id: str) -> bool:
    """Every amphora is built; the VIP is being plugged and HAProxy configured."""
    return len(amphorae_of(ctl, lb_id)) == 3


@pytest.mark.parametrize("moment", [building, configuring], ids=lambda f: f.__name__)
def test_killed_worker_resumes_create_and_nothing_leaks(
    controller: Controller, distributor: dict[str, Any], moment: Any
) -> None:
    ctl = controller
    db = Database(ctl.env["L3DIST_DATABASE_URL"])
    assert amphora_namespaces(ctl) == set()
    lb = ctl.call(
        "POST",
        "/v2/lbaas/loadbalancers",
        {
            "loadbalancer": {
                "vip_subnet_id": ctl.site.subnets["anycast-net-v4"],
                "frontend_subnet_id": ctl.site.subnets["frontend-net-v4"],
                "topology": "ACTIVE_ACTIVE",
                "amphora_count": 3,
                "distributor_id": distributor["id"],
            }
        },
        expect=201,
    )["loadbalancer"]

    wait_until(lambda: moment(ctl, lb["id"]), 60, moment.__name__)
    worker = ctl.processes["worker"]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert ctl.call("GET", lb_path(lb))["loadbalancer"]["provisioning_status"] == "PENDING_CREATE"
    assert job_of(db, lb["id"]).state == "RUNNING"

    ctl.start_worker()
    ctl.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    wait_until(lambda: job_of(db, lb["id"]).state != "RUNNING", 10, "job finished")
    assert job_of(db, lb["id"]).attempts == 2, "taken over by the restarted worker"
    assert job_of(db, lb["id"]).state == "DONE"
    with db.session(writer=False) as session:
        owners = session.scalars(select(NetPort.device_id)).all()

    amps = amphorae_of(ctl, lb["id"])
    ids = {a["id"] for a in amps}
    assert len(ids) == 3
    pool = ctl.site.pool().values()
    assert {h["amphora_id"] for h in pool if h["status"] == "ALLOCATED"} == ids
    assert [h["status"] for h in pool].count("AVAILABLE") == len(ctl.site.hosts) - 3, pool
    held = [ctl.site.host_of(a) for a in amps]
    assert amphora_namespaces(ctl) == {h.haproxy_namespace for h in held}, "no leftover"
    ports = sorted(o for o in owners if o is not None and o in ids)
    assert ports == sorted(ids), "one front-end port each"
    assert all(hosts.leftovers(h) for h in held)

    add_web_service(ctl, lb)
    wait_for_ecmp(ctl, lb, 3)
    result = run_clients(lb["vip_address"], 90)
    assert result["failures"] == 0 and set(result["per_amphora"]) == ids, result

    delete_lb(ctl, lb)
    assert amphora_namespaces(ctl) == set()
