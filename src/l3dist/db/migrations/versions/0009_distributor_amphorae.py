"""A dedicated distributor's amphorae name their distributor (``amphora.distributor_id``):
they serve no load balancer of their own (``load_balancer_id`` null, ``service_type``
distributor), so this is what the create, update and delete distributor flows find them by.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("amphora") as batch:
        batch.add_column(sa.Column("distributor_id", sa.String(36), nullable=True))
        batch.create_index("ix_amphora_distributor_id", ["distributor_id"])
        batch.create_foreign_key(
            "fk_amphora_distributor_id_distributor",
            "distributor",
            ["distributor_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("amphora") as batch:
        batch.drop_constraint("fk_amphora_distributor_id_distributor", type_="foreignkey")
        batch.drop_index("ix_amphora_distributor_id")
        batch.drop_column("distributor_id")
