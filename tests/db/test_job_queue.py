"""The worker's queue on a real database: claimable (the idle workers' read-only look) agrees
with claim: a pending job on a free target, or a running job of a dead worker, and nothing
else."""

from __future__ import annotations

import datetime

from sqlalchemy import update

from l3dist.common import constants as c
from l3dist.db import jobs
from l3dist.db.models import WorkerJob, utcnow
from l3dist.db.session import Database, upgrade


def test_claimable_agrees_with_claim(db_url: str) -> None:
    upgrade(db_url)
    db = Database(db_url)
    assert not jobs.claimable(db, "w1", 10.0) and jobs.claim(db, "w1", 10.0) is None
    with db.session() as s:
        made = [jobs.submit(s, jobs.APPLY_LOAD_BALANCER, "lb-1") for _ in range(2)]
        s.flush()
        first, second = (job.id for job in made)
    assert jobs.claimable(db, "w1", 10.0)
    taken = jobs.claim(db, "w1", 10.0)
    assert taken is not None and taken.id == first
    # The second job's target is busy and its worker (w1) heartbeats: nothing for w2.
    assert not jobs.claimable(db, "w2", 10.0) and jobs.claim(db, "w2", 10.0) is None
    # w1 falls silent: its running job is an orphan, and w2 resumes it.
    with db.session() as s:
        s.execute(update(WorkerJob).where(WorkerJob.id == first)
                  .values(heartbeat_at=utcnow() - datetime.timedelta(seconds=60)))  # fmt: skip
    assert jobs.claimable(db, "w2", 10.0)
    resumed = jobs.claim(db, "w2", 10.0)
    assert resumed is not None and (resumed.id, resumed.owner) == (first, "w2")
    jobs.finish(db, first, "w2")
    assert jobs.claimable(db, "w2", 10.0)
    queued = jobs.claim(db, "w2", 10.0)
    assert queued is not None and queued.id == second
    jobs.finish(db, second, "w2")
    with db.session(writer=False) as s:
        assert {j.state for j in s.query(WorkerJob)} == {c.JOB_DONE}
    assert not jobs.claimable(db, "w2", 10.0)
