"""BFD settings in the BGP peer profile: enabled, transmit/receive interval, detect multiplier.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 08:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "distributor_l3_bgp_peer"
CHECKS = {
    "bfd_transmit_interval_ms": "bfd_transmit_interval_ms BETWEEN 10 AND 60000",
    "bfd_receive_interval_ms": "bfd_receive_interval_ms BETWEEN 10 AND 60000",
    "bfd_detect_multiplier": "bfd_detect_multiplier BETWEEN 2 AND 255",
}


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(
            sa.Column("bfd_enabled", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column(
                "bfd_transmit_interval_ms", sa.Integer(), nullable=False, server_default="100"
            )
        )
        batch.add_column(
            sa.Column("bfd_receive_interval_ms", sa.Integer(), nullable=False, server_default="100")
        )
        batch.add_column(
            sa.Column("bfd_detect_multiplier", sa.Integer(), nullable=False, server_default="3")
        )
        for name, condition in CHECKS.items():
            batch.create_check_constraint(op.f(f"ck_{TABLE}_{name}"), condition)


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        for name in CHECKS:
            batch.drop_constraint(op.f(f"ck_{TABLE}_{name}"), type_="check")
        for column in (
            "bfd_detect_multiplier",
            "bfd_receive_interval_ms",
            "bfd_transmit_interval_ms",
            "bfd_enabled",
        ):
            batch.drop_column(column)
