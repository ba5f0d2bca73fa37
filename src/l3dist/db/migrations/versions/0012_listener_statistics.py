"""Listener statistics (Octavia's listener_statistics): HAProxy's counters per listener and
amphora, as totals kept across reloads.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 11:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listener_statistics",
        sa.Column("listener_id", sa.String(length=36), nullable=False),
        sa.Column("amphora_id", sa.String(length=36), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("active_connections", sa.Integer(), nullable=False),
        sa.Column("total_connections", sa.BigInteger(), nullable=False),
        sa.Column("request_errors", sa.BigInteger(), nullable=False),
        sa.Column("sample", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["listener_id"],
            ["listener.id"],
            name=op.f("fk_listener_statistics_listener_id_listener"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("listener_id", "amphora_id", name=op.f("pk_listener_statistics")),
    )


def downgrade() -> None:
    op.drop_table("listener_statistics")
