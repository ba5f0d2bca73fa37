"""The amphora host pool: pre-provisioned hosts running the l3dist agent, enrolled with a
one-time token, claimed by the hosts compute driver (one amphora per host).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "amphora_host",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("management_address", sa.String(length=64), nullable=True),
        sa.Column("agent_port", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(), nullable=True),
        sa.Column("certificate_serial", sa.String(length=64), nullable=True),
        sa.Column("amphora_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('PENDING_ENROLLMENT', 'AVAILABLE', 'ALLOCATED', 'UNREACHABLE')",
            name=op.f("ck_amphora_host_status"),
        ),
        sa.ForeignKeyConstraint(
            ["amphora_id"],
            ["amphora.id"],
            name=op.f("fk_amphora_host_amphora_id_amphora"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_amphora_host")),
        sa.UniqueConstraint("amphora_id", name="uq_amphora_host_amphora_id"),
        sa.UniqueConstraint("name", name="uq_amphora_host_name"),
        sa.UniqueConstraint("token_hash", name="uq_amphora_host_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("amphora_host")
