"""The routers' view over BMP: routers, their BGP peers and the paths they received; and each
amphora's flow-rescue totals from its last heartbeat (amphora_health.flow_rescue).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 14:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bmp_router",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("connected_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_bmp_router")),
    )
    op.create_table(
        "bmp_peer",
        sa.Column("router_address", sa.String(length=64), nullable=False),
        sa.Column("peer_address", sa.String(length=64), nullable=False),
        sa.Column("asn", sa.BigInteger(), nullable=True),
        sa.Column("bgp_id", sa.String(length=64), nullable=True),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["router_address"],
            ["bmp_router.address"],
            name=op.f("fk_bmp_peer_router_address_bmp_router"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("router_address", "peer_address", name=op.f("pk_bmp_peer")),
    )
    op.create_table(
        "bmp_path",
        sa.Column("router_address", sa.String(length=64), nullable=False),
        sa.Column("peer_address", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=64), nullable=False),
        sa.Column("pre_next_hop", sa.String(length=64), nullable=True),
        sa.Column("post_next_hop", sa.String(length=64), nullable=True),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("as_path", sa.String(length=255), nullable=True),
        sa.Column("pre_received_at", sa.DateTime(), nullable=True),
        sa.Column("post_received_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["router_address"],
            ["bmp_router.address"],
            name=op.f("fk_bmp_path_router_address_bmp_router"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "router_address", "peer_address", "prefix", name=op.f("pk_bmp_path")
        ),
    )
    op.create_index(op.f("ix_bmp_path_prefix"), "bmp_path", ["prefix"], unique=False)
    op.add_column("amphora_health", sa.Column("flow_rescue", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("amphora_health") as batch:
        batch.drop_column("flow_rescue")
    op.drop_index(op.f("ix_bmp_path_prefix"), table_name="bmp_path")
    op.drop_table("bmp_path")
    op.drop_table("bmp_peer")
    op.drop_table("bmp_router")
