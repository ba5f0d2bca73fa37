"""The controller worker's job queue, and taskflow's persistence tables (logbooks, flowdetails,
atomdetails) in the same database, so a flow resumes where a dead worker left it.

taskflow's own schema is created from its table definitions here rather than by its migrations:
those would share Alembic's version table with ours.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 09:30:00.000000
"""

import sqlalchemy as sa
from alembic import op
from taskflow.persistence.backends.sqlalchemy import tables as taskflow_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_job",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("flow", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=36), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=2048), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('PENDING', 'RUNNING', 'DONE', 'FAILED')", name=op.f("ck_worker_job_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_job")),
    )
    op.create_index(op.f("ix_worker_job_state"), "worker_job", ["state"])
    op.create_index(op.f("ix_worker_job_target_id"), "worker_job", ["target_id"])
    metadata = sa.MetaData()
    taskflow_tables.fetch(metadata)
    metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    metadata = sa.MetaData()
    taskflow_tables.fetch(metadata)
    metadata.drop_all(bind=op.get_bind())
    op.drop_table("worker_job")
