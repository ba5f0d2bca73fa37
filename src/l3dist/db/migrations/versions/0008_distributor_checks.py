"""Distributors get their status from the worker (a create_distributor job); those recorded
before that, all still PENDING_CREATE with no job, get one now, so they become ACTIVE (or
ERROR with the reason) instead of staying pending and refusing every change.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:00:00.000000
"""

import datetime
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    distributor = sa.table(
        "distributor", sa.column("id", sa.String), sa.column("status", sa.String)
    )
    job = sa.table(
        "worker_job",
        sa.column("id", sa.String),
        sa.column("flow", sa.String),
        sa.column("target_id", sa.String),
        sa.column("arguments", sa.JSON),
        sa.column("state", sa.String),
        sa.column("attempts", sa.Integer),
        sa.column("created_at", sa.DateTime),
    )
    queued = set(bind.execute(sa.select(job.c.target_id).where(
        job.c.state.in_(("PENDING", "RUNNING")))).scalars())  # fmt: skip
    pending = bind.execute(
        sa.select(distributor.c.id).where(
            distributor.c.status.in_(("PENDING_CREATE", "PENDING_UPDATE"))
        )
    ).scalars()
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    rows = [
        {"id": str(uuid.uuid4()), "flow": "create_distributor", "target_id": distributor_id,
         "arguments": {}, "state": "PENDING", "attempts": 0, "created_at": now}
        for distributor_id in pending
        if distributor_id not in queued
    ]  # fmt: skip
    if rows:
        op.bulk_insert(job, rows)


def downgrade() -> None:
    """Nothing to undo: the jobs ran, or run."""
