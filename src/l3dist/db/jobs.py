"""The worker's job queue in the database.

The API adds a job in the same transaction as the status change it answers (PENDING_*), so an
accepted request is never lost. Workers claim jobs with a conditional UPDATE (only one wins),
heartbeat while they run them, and take over a RUNNING job whose worker stopped heartbeating:
its flow then resumes from the taskflow tables.
"""

from __future__ import annotations

import datetime
import os
import socket
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from l3dist.common import constants as c
from l3dist.db.models import WorkerJob, utcnow
from l3dist.db.session import Database

# Flows, by the name a job carries.
CREATE_LOAD_BALANCER = "create_load_balancer"
APPLY_LOAD_BALANCER = "apply_load_balancer"  # listener/pool/member/monitor changes
DELETE_LOAD_BALANCER = "delete_load_balancer"
SCALE_LOAD_BALANCER = "scale_load_balancer"
FAILOVER_AMPHORA = "failover_amphora"
# Fencing (amphora hosts): a fenced amphora still a member gets its fence cleared (target: its
# load balancer); a fenced host whose amphora was replaced is reset (target: the host).
CLEAR_FENCE = "clear_fence"
RESET_HOST = "reset_host"
# A distributor made or changed (target: the distributor): its driver checks what it needs of
# the fabric, then it is ACTIVE (or ERROR, the reason in the job's error).
CREATE_DISTRIBUTOR = "create_distributor"
UPDATE_DISTRIBUTOR = "update_distributor"
DELETE_DISTRIBUTOR = "delete_distributor"  # its amphorae (dedicated mode) go, then its row
# A dedicated distributor's amphora found dead (target: the distributor): a replacement built,
# announcing what the distributor announces, then the dead one removed.
FAILOVER_DISTRIBUTOR_AMPHORA = "failover_distributor_amphora"
# A VIP route made or deleted (target: the route): Register VIP / Unregister VIP on every
# amphora that runs its distributor's speakers, then ACTIVE (or gone), or ERROR with the reason.
CREATE_VIP_ROUTE = "create_vip_route"
DELETE_VIP_ROUTE = "delete_vip_route"
# Floating IPs bound to or unbound from a load balancer's virtual-ip (target: the load
# balancer, so it runs between that load balancer's other jobs): arguments ``add`` and
# ``remove``, the floating IP addresses; its amphorae announce (or withdraw) them and HAProxy
# binds them, then each floating IP still bound is ACTIVE (unbound: DOWN).
UPDATE_FLOATING_IPS = "update_floating_ips"
FLOWS = (
    CREATE_LOAD_BALANCER,
    APPLY_LOAD_BALANCER,
    DELETE_LOAD_BALANCER,
    SCALE_LOAD_BALANCER,
    FAILOVER_AMPHORA,
    CLEAR_FENCE,
    RESET_HOST,
    CREATE_DISTRIBUTOR,
    UPDATE_DISTRIBUTOR,
    DELETE_DISTRIBUTOR,
    FAILOVER_DISTRIBUTOR_AMPHORA,
    CREATE_VIP_ROUTE,
    DELETE_VIP_ROUTE,
    UPDATE_FLOATING_IPS,
)


def submit(session: Session, flow: str, target_id: str, **arguments: Any) -> WorkerJob:
    """Queue a flow for target_id in the caller's transaction."""
    assert flow in FLOWS, flow
    job = WorkerJob(flow=flow, target_id=target_id, arguments=arguments, state=c.JOB_PENDING)
    session.add(job)
    return job


def submit_once(session: Session, flow: str, target_id: str, **arguments: Any) -> WorkerJob | None:
    """Queue a flow unless the same one (flow, target and these arguments) waits or runs;
    None then. For jobs asked again and again (a heartbeat every second, a periodic retry):
    one is enough."""
    waiting = session.scalars(
        select(WorkerJob.arguments).where(
            WorkerJob.flow == flow,
            WorkerJob.target_id == target_id,
            WorkerJob.state.in_((c.JOB_PENDING, c.JOB_RUNNING)),
        )
    )
    if any(all(job.get(k) == v for k, v in arguments.items()) for job in waiting):
        return None
    return submit(session, flow, target_id, **arguments)


def waiting(session: Session, flow: str) -> int:
    """How many jobs of the flow wait or run."""
    return int(
        session.scalar(
            select(func.count()).where(
                WorkerJob.flow == flow, WorkerJob.state.in_((c.JOB_PENDING, c.JOB_RUNNING))
            )
        )
        or 0
    )


def queue_depth(session: Session) -> list[tuple[str, str, int]]:
    """(flow, state, count) of the jobs pending or running."""
    rows = session.execute(
        select(WorkerJob.flow, WorkerJob.state, func.count())
        .where(WorkerJob.state.in_((c.JOB_PENDING, c.JOB_RUNNING)))
        .group_by(WorkerJob.flow, WorkerJob.state)
    )
    return [(str(flow), str(state), int(count)) for flow, state, count in rows]


def last_submitted(session: Session, flow: str) -> dict[str, datetime.datetime]:
    """When a job of the flow was last queued, by target."""
    rows = session.execute(
        select(WorkerJob.target_id, func.max(WorkerJob.created_at))
        .where(WorkerJob.flow == flow)
        .group_by(WorkerJob.target_id)
    )
    return {target: when for target, when in rows}


def last_failure(session: Session, target_id: str) -> str | None:
    """Why the target's last failed job failed (the error the worker recorded): the reason an
    object is in ERROR, for the API to show."""
    return session.scalar(
        select(WorkerJob.error)
        .where(WorkerJob.target_id == target_id, WorkerJob.state == c.JOB_FAILED)
        .order_by(WorkerJob.created_at.desc())
        .limit(1)
    )


def owner_name(tag: str) -> str:
    """A worker's name in the queue: host, pid and a random tag (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{tag}"


def _dead_here(owner: str | None) -> bool:
    """Is owner a worker of this host whose process is gone? Its jobs need not wait for the
    heartbeat timeout: a worker restarted after a crash resumes them at once."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claimable(db: Database, owner: str, stale_after: float) -> bool:
    """Whether claim could find something: a pending job whose target is free, or a running
    job of a dead worker. A plain read, so idle workers polling often never take SQLite's
    write lock (nor PostgreSQL's row locks) from the API and the running flows."""
    stale = utcnow() - datetime.timedelta(seconds=stale_after)
    with db.session(writer=False) as session:
        busy = select(WorkerJob.target_id).where(WorkerJob.state == c.JOB_RUNNING)
        pending = session.scalar(
            select(WorkerJob.id)
            .where(WorkerJob.state == c.JOB_PENDING, WorkerJob.target_id.not_in(busy))
            .limit(1)
        )
        if pending is not None:
            return True
        running = session.execute(
            select(WorkerJob.owner, WorkerJob.heartbeat_at).where(
                WorkerJob.state == c.JOB_RUNNING, WorkerJob.owner != owner
            )
        ).all()
    return any(beat is None or beat < stale or _dead_here(other) for other, beat in running)


def claim(db: Database, owner: str, stale_after: float) -> WorkerJob | None:
    """A job for this worker: first one whose worker died (resumed), else the oldest pending
    one whose target has no running job. None when there is nothing to do.

    A worker died when it stopped heartbeating for stale_after seconds, or at once when it ran
    on this host and its process is gone."""
    now = utcnow()
    stale = now - datetime.timedelta(seconds=stale_after)
    with db.session(writer=True) as session:
        running = session.scalars(
            select(WorkerJob)
            .where(WorkerJob.state == c.JOB_RUNNING, WorkerJob.owner != owner)
            .order_by(WorkerJob.created_at)
        ).all()
        for orphan in running:
            beat = orphan.heartbeat_at
            dead = beat is None or beat < stale or _dead_here(orphan.owner)
            if dead and _take(session, orphan, owner, now, c.JOB_RUNNING):
                return orphan
        busy = select(WorkerJob.target_id).where(WorkerJob.state == c.JOB_RUNNING)
        candidate = session.scalars(
            select(WorkerJob)
            .where(WorkerJob.state == c.JOB_PENDING, WorkerJob.target_id.not_in(busy))
            .order_by(WorkerJob.created_at)
            .limit(1)
        ).first()
        if candidate is not None and _take(session, candidate, owner, now, c.JOB_PENDING):
            return candidate
    return None


def _take(session: Session, job: WorkerJob, owner: str, now: datetime.datetime, state: str) -> bool:
    result = session.execute(
        update(WorkerJob)
        .where(
            WorkerJob.id == job.id,
            WorkerJob.state == state,
            WorkerJob.owner.is_(None) if job.owner is None else WorkerJob.owner == job.owner,
        )
        .values(state=c.JOB_RUNNING, owner=owner, heartbeat_at=now, attempts=WorkerJob.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    session.refresh(job)
    return True


def heartbeat(db: Database, owner: str) -> None:
    with db.session(writer=True) as session:
        session.execute(
            update(WorkerJob)
            .where(WorkerJob.owner == owner, WorkerJob.state == c.JOB_RUNNING)
            .values(heartbeat_at=utcnow())
        )


def save_arguments(db: Database, job_id: str, arguments: dict[str, Any]) -> None:
    """Persist the plan a flow was built from, so a resumed flow is built the same way."""
    with db.session(writer=True) as session:
        session.execute(update(WorkerJob).where(WorkerJob.id == job_id).values(arguments=arguments))


def finish(db: Database, job_id: str, owner: str, error: str | None = None) -> None:
    with db.session(writer=True) as session:
        session.execute(
            update(WorkerJob)
            .where(WorkerJob.id == job_id, WorkerJob.owner == owner)
            .values(
                state=c.JOB_FAILED if error else c.JOB_DONE,
                error=(error or None) and error[:2000],
            )
        )
