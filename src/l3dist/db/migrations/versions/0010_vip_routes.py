"""VIP routes (the spec's Register VIP as an API resource): anycast routes of a VIP to next hops
that are not amphorae, announced by the amphorae that run a distributor's speakers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PROVISIONING = "provisioning_status IN ('ACTIVE', 'PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE', 'DELETED', 'ERROR')"
OPERATING = (
    "operating_status IN ('ONLINE', 'OFFLINE', 'DEGRADED', 'ERROR', 'DRAINING', 'NO_MONITOR')"
)


def upgrade() -> None:
    op.create_table(
        "distributor_l3_vip_route",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("distributor_id", sa.String(length=36), nullable=False),
        sa.Column("vip_ip", sa.String(length=64), nullable=False),
        sa.Column("nexthop_ip", sa.String(length=64), nullable=False),
        sa.Column("distributor_l3_bgp_peer_id", sa.String(length=36), nullable=True),
        sa.Column("port_id", sa.String(length=36), nullable=True),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(PROVISIONING, name=op.f("ck_distributor_l3_vip_route_prov_status")),
        sa.CheckConstraint(OPERATING, name=op.f("ck_distributor_l3_vip_route_op_status")),
        sa.ForeignKeyConstraint(
            ["distributor_id"],
            ["distributor.id"],
            name=op.f("fk_distributor_l3_vip_route_distributor_id_distributor"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["distributor_l3_bgp_peer_id"],
            ["distributor_l3_bgp_peer.id"],
            name=op.f(
                "fk_distributor_l3_vip_route_distributor_l3_bgp_peer_id_distributor_l3_bgp_peer"
            ),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributor_l3_vip_route")),
    )
    op.create_index(
        op.f("ix_distributor_l3_vip_route_project_id"),
        "distributor_l3_vip_route",
        ["project_id"],
    )
    op.create_index(
        op.f("ix_distributor_l3_vip_route_distributor_id"),
        "distributor_l3_vip_route",
        ["distributor_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_distributor_l3_vip_route_distributor_id"), table_name="distributor_l3_vip_route"
    )
    op.drop_index(
        op.f("ix_distributor_l3_vip_route_project_id"), table_name="distributor_l3_vip_route"
    )
    op.drop_table("distributor_l3_vip_route")
