"""A load balancer's own BGP speaker driver (an Octavia flavor key of the l3dist provider).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 11:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("load_balancer") as batch:
        batch.add_column(sa.Column("speaker_driver", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("load_balancer") as batch:
        batch.drop_column("speaker_driver")
