"""Initial schema: Octavia's tables with the L3 active-active spec's changes and new tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:35:52.202060
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "amphora_health",
        sa.Column("amphora_id", sa.String(length=36), nullable=False),
        sa.Column("last_update", sa.DateTime(), nullable=False),
        sa.Column("busy", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("amphora_id", name=op.f("pk_amphora_health")),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_token_token_sha256")),
    )
    op.create_table(
        "distributor",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("distributor_type", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("frontend_subnet", sa.String(length=36), nullable=True),
        sa.Column("config_data", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("distributor_type IN ('L3_BGP')", name=op.f("ck_distributor_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributor")),
        sa.UniqueConstraint("name", name="uq_distributor_name"),
    )
    op.create_table(
        "distributor_l3_bgp_peer",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("peer_ip", sa.String(length=64), nullable=False),
        sa.Column("remote_as", sa.BigInteger(), nullable=False),
        sa.Column("auth_type", sa.String(length=16), nullable=True),
        sa.Column("ttl_hops", sa.Integer(), nullable=True),
        sa.Column("hold_time", sa.Integer(), nullable=True),
        sa.Column("keepalive_interval", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("password", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "auth_type IN ('none', 'md5')", name=op.f("ck_distributor_l3_bgp_peer_auth_type")
        ),
        sa.CheckConstraint(
            "hold_time = 0 OR hold_time BETWEEN 3 AND 65535",
            name=op.f("ck_distributor_l3_bgp_peer_hold_time"),
        ),
        sa.CheckConstraint(
            "remote_as BETWEEN 1 AND 4294967295", name=op.f("ck_distributor_l3_bgp_peer_remote_as")
        ),
        sa.CheckConstraint(
            "ttl_hops BETWEEN 1 AND 254", name=op.f("ck_distributor_l3_bgp_peer_ttl_hops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributor_l3_bgp_peer")),
        sa.UniqueConstraint("name", name="uq_distributor_l3_bgp_peer_name"),
    )
    op.create_table(
        "distributor_l3_bgp_speaker",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("local_as", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "ip_version IN (4, 6)", name=op.f("ck_distributor_l3_bgp_speaker_ip_version")
        ),
        sa.CheckConstraint(
            "local_as BETWEEN 1 AND 4294967295", name=op.f("ck_distributor_l3_bgp_speaker_local_as")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributor_l3_bgp_speaker")),
        sa.UniqueConstraint("name", name="uq_distributor_l3_bgp_speaker_name"),
    )
    op.create_table(
        "load_balancer",
        sa.Column("topology", sa.String(length=36), nullable=True),
        sa.Column("amphora_count", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("flavor_id", sa.String(length=36), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "operating_status IN ('ONLINE', 'OFFLINE', 'DEGRADED', 'ERROR', 'DRAINING', 'NO_MONITOR')",
            name=op.f("ck_load_balancer_op_status"),
        ),
        sa.CheckConstraint(
            "provisioning_status IN ('ACTIVE', 'PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE', 'DELETED', 'ERROR')",
            name=op.f("ck_load_balancer_prov_status"),
        ),
        sa.CheckConstraint(
            "topology IN ('SINGLE', 'ACTIVE_ACTIVE')", name=op.f("ck_load_balancer_topology")
        ),
        sa.CheckConstraint("amphora_count >= 1", name=op.f("ck_load_balancer_amphora_count")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_balancer")),
    )
    with op.batch_alter_table("load_balancer", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_load_balancer_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "amphora",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("compute_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=36), nullable=False),
        sa.Column("load_balancer_id", sa.String(length=36), nullable=True),
        sa.Column("lb_network_ip", sa.String(length=64), nullable=True),
        sa.Column("ha_ip", sa.String(length=64), nullable=True),
        sa.Column("ha_port_id", sa.String(length=36), nullable=True),
        sa.Column("role", sa.String(length=36), nullable=True),
        sa.Column("cert_expiration", sa.DateTime(), nullable=True),
        sa.Column("cert_busy", sa.Boolean(), nullable=False),
        sa.Column("cached_zone", sa.String(length=255), nullable=True),
        sa.Column("image_id", sa.String(length=36), nullable=True),
        sa.Column("compute_flavor", sa.String(length=255), nullable=True),
        sa.Column("service_type", sa.String(length=36), nullable=True),
        sa.Column("frontend_ip", sa.String(length=64), nullable=True),
        sa.Column("frontend_subnet_id", sa.String(length=36), nullable=True),
        sa.Column("frontend_port_id", sa.String(length=36), nullable=True),
        sa.Column("frontend_interface", sa.String(length=16), nullable=True),
        sa.Column("frontend_id", sa.Integer(), nullable=True),
        sa.Column("frontend_priority", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('BOOTING', 'ALLOCATED', 'READY', 'PENDING_CREATE', 'PENDING_DELETE', 'DELETED', 'ERROR', 'FAILOVER_STOPPED')",
            name=op.f("ck_amphora_status"),
        ),
        sa.ForeignKeyConstraint(
            ["load_balancer_id"],
            ["load_balancer.id"],
            name=op.f("fk_amphora_load_balancer_id_load_balancer"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_amphora")),
    )
    with op.batch_alter_table("amphora", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_amphora_load_balancer_id"), ["load_balancer_id"], unique=False
        )

    op.create_table(
        "distributor_l3_bgp_peer_registration",
        sa.Column("distributor_l3_bgp_speaker_id", sa.String(length=36), nullable=False),
        sa.Column("distributor_l3_bgp_peer_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["distributor_l3_bgp_peer_id"],
            ["distributor_l3_bgp_peer.id"],
            name=op.f(
                "fk_distributor_l3_bgp_peer_registration_distributor_l3_bgp_peer_id_distributor_l3_bgp_peer"
            ),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["distributor_l3_bgp_speaker_id"],
            ["distributor_l3_bgp_speaker.id"],
            name=op.f(
                "fk_distributor_l3_bgp_peer_registration_distributor_l3_bgp_speaker_id_distributor_l3_bgp_speaker"
            ),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "distributor_l3_bgp_speaker_id",
            "distributor_l3_bgp_peer_id",
            name=op.f("pk_distributor_l3_bgp_peer_registration"),
        ),
    )
    op.create_table(
        "pool",
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("lb_algorithm", sa.String(length=255), nullable=False),
        sa.Column("load_balancer_id", sa.String(length=36), nullable=False),
        sa.Column("session_persistence", sa.JSON(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "lb_algorithm IN ('ROUND_ROBIN', 'LEAST_CONNECTIONS', 'SOURCE_IP')",
            name=op.f("ck_pool_lb_algorithm"),
        ),
        sa.CheckConstraint(
            "operating_status IN ('ONLINE', 'OFFLINE', 'DEGRADED', 'ERROR', 'DRAINING', 'NO_MONITOR')",
            name=op.f("ck_pool_op_status"),
        ),
        sa.CheckConstraint(
            "protocol IN ('HTTP', 'HTTPS', 'TCP', 'PROXY')", name=op.f("ck_pool_protocol")
        ),
        sa.CheckConstraint(
            "provisioning_status IN ('ACTIVE', 'PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE', 'DELETED', 'ERROR')",
            name=op.f("ck_pool_prov_status"),
        ),
        sa.ForeignKeyConstraint(
            ["load_balancer_id"],
            ["load_balancer.id"],
            name=op.f("fk_pool_load_balancer_id_load_balancer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool")),
    )
    with op.batch_alter_table("pool", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pool_load_balancer_id"), ["load_balancer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_pool_project_id"), ["project_id"], unique=False)

    op.create_table(
        "vip",
        sa.Column("load_balancer_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("port_id", sa.String(length=36), nullable=True),
        sa.Column("subnet_id", sa.String(length=36), nullable=True),
        sa.Column("network_id", sa.String(length=36), nullable=True),
        sa.Column("qos_policy_id", sa.String(length=36), nullable=True),
        sa.Column("octavia_owned", sa.Boolean(), nullable=True),
        sa.Column("distributor_id", sa.String(length=36), nullable=True),
        sa.Column("frontend_subnet_id", sa.String(length=36), nullable=True),
        sa.Column("frontend_network_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["distributor_id"],
            ["distributor.id"],
            name=op.f("fk_vip_distributor_id_distributor"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["load_balancer_id"],
            ["load_balancer.id"],
            name=op.f("fk_vip_load_balancer_id_load_balancer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("load_balancer_id", name=op.f("pk_vip")),
        sa.UniqueConstraint("subnet_id", "ip_address", name="uq_vip_subnet_address"),
    )
    op.create_table(
        "amphora_registration",
        sa.Column("amphora_id", sa.String(length=36), nullable=False),
        sa.Column("load_balancer_id", sa.String(length=36), nullable=False),
        sa.Column("distributor_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["amphora_id"],
            ["amphora.id"],
            name=op.f("fk_amphora_registration_amphora_id_amphora"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["distributor_id"],
            ["distributor.id"],
            name=op.f("fk_amphora_registration_distributor_id_distributor"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["load_balancer_id"],
            ["load_balancer.id"],
            name=op.f("fk_amphora_registration_load_balancer_id_load_balancer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "amphora_id", "load_balancer_id", name=op.f("pk_amphora_registration")
        ),
    )
    op.create_table(
        "distributor_l3_amphora_bgp_speaker_registration",
        sa.Column("distributor_l3_bgp_speaker_id", sa.String(length=36), nullable=False),
        sa.Column("amphora_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["amphora_id"],
            ["amphora.id"],
            name=op.f("fk_distributor_l3_amphora_bgp_speaker_registration_amphora_id_amphora"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["distributor_l3_bgp_speaker_id"],
            ["distributor_l3_bgp_speaker.id"],
            name=op.f(
                "fk_distributor_l3_amphora_bgp_speaker_registration_distributor_l3_bgp_speaker_id_distributor_l3_bgp_speaker"
            ),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint(
            "distributor_l3_bgp_speaker_id",
            "amphora_id",
            name=op.f("pk_distributor_l3_amphora_bgp_speaker_registration"),
        ),
    )
    op.create_table(
        "distributor_l3_amphora_vip_registration",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("amphora_id", sa.String(length=36), nullable=False),
        sa.Column("load_balancer_id", sa.String(length=36), nullable=False),
        sa.Column("nexthop_ip", sa.String(length=64), nullable=False),
        sa.Column("distributor_l3_bgp_peer_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["amphora_id"],
            ["amphora.id"],
            name=op.f("fk_distributor_l3_amphora_vip_registration_amphora_id_amphora"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["distributor_l3_bgp_peer_id"],
            ["distributor_l3_bgp_peer.id"],
            name=op.f(
                "fk_distributor_l3_amphora_vip_registration_distributor_l3_bgp_peer_id_distributor_l3_bgp_peer"
            ),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["load_balancer_id"],
            ["load_balancer.id"],
            name=op.f("fk_distributor_l3_amphora_vip_registration_load_balancer_id_load_balancer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributor_l3_amphora_vip_registration")),
        sa.UniqueConstraint(
            "amphora_id",
            "load_balancer_id",
            "nexthop_ip",
            "distributor_l3_bgp_peer_id",
            name="uq_distributor_l3_amphora_vip_registration",
        ),
    )
    op.create_table(
        "health_monitor",
        sa.Column("pool_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=36), nullable=False),
        sa.Column("delay", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("fall_threshold", sa.Integer(), nullable=False),
        sa.Column("rise_threshold", sa.Integer(), nullable=False),
        sa.Column("http_method", sa.String(length=16), nullable=True),
        sa.Column("url_path", sa.String(length=2048), nullable=True),
        sa.Column("expected_codes", sa.String(length=64), nullable=True),
        sa.Column("domain_name", sa.String(length=255), nullable=True),
        sa.Column("http_version", sa.Float(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "operating_status IN ('ONLINE', 'OFFLINE', 'DEGRADED', 'ERROR', 'DRAINING', 'NO_MONITOR')",
            name=op.f("ck_health_monitor_op_status"),
        ),
        sa.CheckConstraint(
            "provisioning_status IN ('ACTIVE', 'PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE', 'DELETED', 'ERROR')",
            name=op.f("ck_health_monitor_prov_status"),
        ),
        sa.CheckConstraint(
            "type IN ('HTTP', 'HTTPS', 'PING', 'TCP', 'TLS-HELLO')",
            name=op.f("ck_health_monitor_type"),
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["pool.id"], name=op.f("fk_health_monitor_pool_id_pool")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_monitor")),
        sa.UniqueConstraint("pool_id", name="uq_health_monitor_pool_id"),
    )
    with op.batch_alter_table("health_monitor", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_monitor_project_id"), ["project_id"], unique=False
        )

    op.create_table(
        "listener",
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("protocol_port", sa.Integer(), nullable=False),
        sa.Column("connection_limit", sa.Integer(), nullable=True),
        sa.Column("load_balancer_id", sa.String(length=36), nullable=False),
        sa.Column("default_pool_id", sa.String(length=36), nullable=True),
        sa.Column("timeout_client_data", sa.Integer(), nullable=True),
        sa.Column("timeout_member_connect", sa.Integer(), nullable=True),
        sa.Column("timeout_member_data", sa.Integer(), nullable=True),
        sa.Column("timeout_tcp_inspect", sa.Integer(), nullable=True),
        sa.Column("insert_headers", sa.JSON(), nullable=True),
        sa.Column("allowed_cidrs", sa.JSON(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "operating_status IN ('ONLINE', 'OFFLINE', 'DEGRADED', 'ERROR', 'DRAINING', 'NO_MONITOR')",
            name=op.f("ck_listener_op_status"),
        ),
        sa.CheckConstraint(
            "protocol IN ('HTTP', 'HTTPS', 'TCP')", name=op.f("ck_listener_protocol")
        ),
        sa.CheckConstraint(
            "provisioning_status IN ('ACTIVE', 'PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE', 'DELETED', 'ERROR')",
            name=op.f("ck_listener_prov_status"),
        ),
        sa.ForeignKeyConstraint(
            ["default_pool_id"],
            ["pool.id"],
            name=op.f("fk_listener_default_pool_id_pool"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["load_balancer_id"],
            ["load_balancer.id"],
            name=op.f("fk_listener_load_balancer_id_load_balancer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listener")),
        sa.UniqueConstraint("load_balancer_id", "protocol_port", name="uq_listener_lb_port"),
    )
    with op.batch_alter_table("listener", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_listener_load_balancer_id"), ["load_balancer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_listener_project_id"), ["project_id"], unique=False)

    op.create_table(
        "member",
        sa.Column("pool_id", sa.String(length=36), nullable=False),
        sa.Column("subnet_id", sa.String(length=36), nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("protocol_port", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=True),
        sa.Column("backup", sa.Boolean(), nullable=False),
        sa.Column("monitor_address", sa.String(length=64), nullable=True),
        sa.Column("monitor_port", sa.Integer(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "operating_status IN ('ONLINE', 'OFFLINE', 'DEGRADED', 'ERROR', 'DRAINING', 'NO_MONITOR')",
            name=op.f("ck_member_op_status"),
        ),
        sa.CheckConstraint(
            "provisioning_status IN ('ACTIVE', 'PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE', 'DELETED', 'ERROR')",
            name=op.f("ck_member_prov_status"),
        ),
        sa.ForeignKeyConstraint(["pool_id"], ["pool.id"], name=op.f("fk_member_pool_id_pool")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member")),
        sa.UniqueConstraint("pool_id", "ip_address", "protocol_port", name="uq_member_address"),
    )
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_pool_id"), ["pool_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_member_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_project_id"))
        batch_op.drop_index(batch_op.f("ix_member_pool_id"))

    op.drop_table("member")
    with op.batch_alter_table("listener", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_listener_project_id"))
        batch_op.drop_index(batch_op.f("ix_listener_load_balancer_id"))

    op.drop_table("listener")
    with op.batch_alter_table("health_monitor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_monitor_project_id"))

    op.drop_table("health_monitor")
    op.drop_table("distributor_l3_amphora_vip_registration")
    op.drop_table("distributor_l3_amphora_bgp_speaker_registration")
    op.drop_table("amphora_registration")
    op.drop_table("vip")
    with op.batch_alter_table("pool", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pool_project_id"))
        batch_op.drop_index(batch_op.f("ix_pool_load_balancer_id"))

    op.drop_table("pool")
    op.drop_table("distributor_l3_bgp_peer_registration")
    with op.batch_alter_table("amphora", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_amphora_load_balancer_id"))

    op.drop_table("amphora")
    with op.batch_alter_table("load_balancer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_load_balancer_project_id"))

    op.drop_table("load_balancer")
    op.drop_table("distributor_l3_bgp_speaker")
    op.drop_table("distributor_l3_bgp_peer")
    op.drop_table("distributor")
    op.drop_table("api_token")
    op.drop_table("amphora_health")
