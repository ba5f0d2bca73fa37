"""The lab network driver's networks, subnets, ports and IP allocations (IPAM).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:14:54.135100
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "net_network",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("bridge", sa.String(length=15), nullable=True),
        sa.Column("mtu", sa.Integer(), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("router_external", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_net_network")),
        sa.UniqueConstraint("name", name="uq_net_network_name"),
    )
    op.create_table(
        "net_port",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("device_owner", sa.String(length=255), nullable=True),
        sa.Column("mac_address", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("namespace", sa.String(length=255), nullable=True),
        sa.Column("ifname", sa.String(length=15), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["net_network.id"],
            name=op.f("fk_net_port_network_id_net_network"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_net_port")),
    )
    with op.batch_alter_table("net_port", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_net_port_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_net_port_network_id"), ["network_id"], unique=False)

    op.create_table(
        "net_subnet",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("gateway_ip", sa.String(length=64), nullable=True),
        sa.Column("first_host_index", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("ip_version IN (4, 6)", name=op.f("ck_net_subnet_ip_version")),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["net_network.id"],
            name=op.f("fk_net_subnet_network_id_net_network"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_net_subnet")),
        sa.UniqueConstraint("name", name="uq_net_subnet_name"),
    )
    with op.batch_alter_table("net_subnet", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_net_subnet_network_id"), ["network_id"], unique=False)

    op.create_table(
        "net_ip_allocation",
        sa.Column("subnet_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["net_port.id"],
            name=op.f("fk_net_ip_allocation_port_id_net_port"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["net_subnet.id"],
            name=op.f("fk_net_ip_allocation_subnet_id_net_subnet"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "ip_address", name=op.f("pk_net_ip_allocation")),
    )
    with op.batch_alter_table("net_ip_allocation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_net_ip_allocation_port_id"), ["port_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("net_ip_allocation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_net_ip_allocation_port_id"))

    op.drop_table("net_ip_allocation")
    with op.batch_alter_table("net_subnet", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_net_subnet_network_id"))

    op.drop_table("net_subnet")
    with op.batch_alter_table("net_port", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_net_port_network_id"))
        batch_op.drop_index(batch_op.f("ix_net_port_device_id"))

    op.drop_table("net_port")
    op.drop_table("net_network")
