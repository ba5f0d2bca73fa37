"""Drain Amphora: when an amphora's drain started (its operating status is DRAINING meanwhile,
and a resumed flow keeps the same drain deadline).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("amphora") as batch:
        batch.add_column(sa.Column("drain_started_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("amphora") as batch:
        batch.drop_column("drain_started_at")
