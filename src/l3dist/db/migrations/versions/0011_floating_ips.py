"""Floating IPs (Neutron's floatingips) and the virtual-ip object between a load balancer's
floating IPs and its amphorae's front-end interfaces.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "virtual_ip",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("load_balancer_id", sa.String(length=36), nullable=False),
        sa.Column("vip_address", sa.String(length=64), nullable=False),
        sa.Column("vip_port_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["load_balancer_id"],
            ["load_balancer.id"],
            name=op.f("fk_virtual_ip_load_balancer_id_load_balancer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_virtual_ip")),
        sa.UniqueConstraint("load_balancer_id", name=op.f("uq_virtual_ip_load_balancer_id")),
    )
    op.create_table(
        "virtual_ip_interface",
        sa.Column("virtual_ip_id", sa.String(length=36), nullable=False),
        sa.Column("amphora_id", sa.String(length=36), nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["virtual_ip_id"],
            ["virtual_ip.id"],
            name=op.f("fk_virtual_ip_interface_virtual_ip_id_virtual_ip"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["amphora_id"],
            ["amphora.id"],
            name=op.f("fk_virtual_ip_interface_amphora_id_amphora"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "virtual_ip_id", "amphora_id", name=op.f("pk_virtual_ip_interface")
        ),
    )
    op.create_table(
        "floating_ip",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("floating_network_id", sa.String(length=36), nullable=False),
        sa.Column("floating_subnet_id", sa.String(length=36), nullable=False),
        sa.Column("floating_ip_address", sa.String(length=64), nullable=False),
        sa.Column("floating_port_id", sa.String(length=36), nullable=True),
        sa.Column("port_id", sa.String(length=36), nullable=True),
        sa.Column("fixed_ip_address", sa.String(length=64), nullable=True),
        sa.Column("virtual_ip_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('ACTIVE', 'DOWN', 'ERROR')", name=op.f("ck_floating_ip_status")
        ),
        sa.ForeignKeyConstraint(
            ["virtual_ip_id"],
            ["virtual_ip.id"],
            name=op.f("fk_floating_ip_virtual_ip_id_virtual_ip"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_floating_ip")),
        sa.UniqueConstraint(
            "floating_network_id", "floating_ip_address", name=op.f("uq_floating_ip_address")
        ),
        sa.UniqueConstraint("port_id", "fixed_ip_address", name=op.f("uq_floating_ip_fixed_ip")),
    )
    op.create_index(op.f("ix_floating_ip_project_id"), "floating_ip", ["project_id"])
    op.create_index(op.f("ix_floating_ip_virtual_ip_id"), "floating_ip", ["virtual_ip_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_floating_ip_virtual_ip_id"), table_name="floating_ip")
    op.drop_index(op.f("ix_floating_ip_project_id"), table_name="floating_ip")
    op.drop_table("floating_ip")
    op.drop_table("virtual_ip_interface")
    op.drop_table("virtual_ip")
