"""Subnet roles: what each subnet is for (anycast VIP pool, front end, management, member,
external), so the API and the agents can refuse a VIP or a route outside the anycast pools.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 19:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("net_subnet") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="member"))
        batch.create_check_constraint(
            op.f("ck_net_subnet_role"),
            "role IN ('anycast', 'frontend', 'management', 'member', 'external')",
        )


def downgrade() -> None:
    with op.batch_alter_table("net_subnet") as batch:
        batch.drop_constraint(op.f("ck_net_subnet_role"), type_="check")
        batch.drop_column("role")
