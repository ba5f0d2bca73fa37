"""The control plane's tables: Octavia's (load_balancer, vip, amphora, listener, pool, member,
health_monitor, amphora_health) with the L3 active-active spec's changes, and the spec's new
distributor tables, with the spec's names, types and nullability.

Deviations, on purpose: ASNs are BigInteger (the spec says Integer, but a 4-byte ASN does not fit
a signed 32-bit column); admin resources carry a unique name; the amphora VIP registration table
has a surrogate key because its peer column is nullable.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from l3dist.common import constants as c

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Timestamps:
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, onupdate=utcnow)


class ProvisionedMixin(Timestamps):
    """Octavia's tenant objects: project, name, statuses, admin state, tags."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    provisioning_status: Mapped[str] = mapped_column(String(16))
    operating_status: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    tags: Mapped[list[Any]] = mapped_column(default=list)


def status_checks() -> tuple[CheckConstraint, CheckConstraint]:
    return (
        CheckConstraint(_in("provisioning_status", c.PROVISIONING_STATUSES), name="prov_status"),
        CheckConstraint(_in("operating_status", c.OPERATING_STATUSES), name="op_status"),
    )


class LoadBalancer(ProvisionedMixin, Base):
    __tablename__ = "load_balancer"
    __table_args__ = (
        *status_checks(),
        CheckConstraint(_in("topology", c.TOPOLOGIES), name="topology"),
        CheckConstraint("amphora_count >= 1", name="amphora_count"),
    )
    topology: Mapped[str | None] = mapped_column(String(36))
    amphora_count: Mapped[int] = mapped_column(Integer, default=1)
    provider: Mapped[str | None] = mapped_column(String(64))
    flavor_id: Mapped[str | None] = mapped_column(String(36))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    # The BGP speaker its amphorae run (an l3dist.speaker_drivers entry point); None: the
    # controller's [controller] speaker_driver.
    speaker_driver: Mapped[str | None] = mapped_column(String(64))

    vip: Mapped[Vip | None] = relationship(
        back_populates="load_balancer", uselist=False, cascade="all, delete-orphan", lazy="joined"
    )
    listeners: Mapped[list[Listener]] = relationship(back_populates="load_balancer")
    pools: Mapped[list[Pool]] = relationship(back_populates="load_balancer")
    amphorae: Mapped[list[Amphora]] = relationship(back_populates="load_balancer")


class Vip(Base):
    __tablename__ = "vip"
    __table_args__ = (UniqueConstraint("subnet_id", "ip_address", name="uq_vip_subnet_address"),)
    load_balancer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("load_balancer.id", ondelete="CASCADE"), primary_key=True
    )
    ip_address: Mapped[str | None] = mapped_column(String(64))
    port_id: Mapped[str | None] = mapped_column(String(36))
    subnet_id: Mapped[str | None] = mapped_column(String(36))
    network_id: Mapped[str | None] = mapped_column(String(36))
    qos_policy_id: Mapped[str | None] = mapped_column(String(36))
    octavia_owned: Mapped[bool | None] = mapped_column(Boolean)
    # Spec: the distributor responsible for distributing traffic for this VIP.
    distributor_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("distributor.id", ondelete="RESTRICT")
    )
    # Spec (LB create): the front-end (provider) subnet, when not the VIP subnet.
    frontend_subnet_id: Mapped[str | None] = mapped_column(String(36))
    frontend_network_id: Mapped[str | None] = mapped_column(String(36))

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="vip")


class Distributor(Timestamps, Base):
    """Spec table ``distributor``."""

    __tablename__ = "distributor"
    __table_args__ = (
        CheckConstraint(_in("distributor_type", c.DISTRIBUTOR_TYPES), name="type"),
        UniqueConstraint("name", name="uq_distributor_name"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    distributor_type: Mapped[str] = mapped_column(String(36))
    status: Mapped[str | None] = mapped_column(String(36))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    frontend_subnet: Mapped[str | None] = mapped_column(String(36))
    config_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Amphora(Timestamps, Base):
    """Octavia's amphora with the spec's changes: nullable load_balancer_id, service_type, and the
    frontend_* columns that replace vrrp_*."""

    __tablename__ = "amphora"
    __table_args__ = (CheckConstraint(_in("status", c.AMPHORA_STATUSES), name="status"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    compute_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(36))
    load_balancer_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("load_balancer.id", ondelete="SET NULL"), index=True
    )
    lb_network_ip: Mapped[str | None] = mapped_column(String(64))
    ha_ip: Mapped[str | None] = mapped_column(String(64))
    ha_port_id: Mapped[str | None] = mapped_column(String(36))
    role: Mapped[str | None] = mapped_column(String(36))
    cert_expiration: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    cert_busy: Mapped[bool] = mapped_column(Boolean, default=False)
    cached_zone: Mapped[str | None] = mapped_column(String(255))
    image_id: Mapped[str | None] = mapped_column(String(36))
    compute_flavor: Mapped[str | None] = mapped_column(String(255))
    service_type: Mapped[str | None] = mapped_column(String(36))
    frontend_ip: Mapped[str | None] = mapped_column(String(64))
    frontend_subnet_id: Mapped[str | None] = mapped_column(String(36))
    frontend_port_id: Mapped[str | None] = mapped_column(String(36))
    frontend_interface: Mapped[str | None] = mapped_column(String(16))
    frontend_id: Mapped[int | None] = mapped_column(Integer)
    frontend_priority: Mapped[int | None] = mapped_column(Integer)
    # Drain Amphora: set when its route was withdrawn; it leaves once its connections end or
    # the drain timeout (counted from here, also by a resumed flow) expires.
    drain_started_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    # A dedicated distributor's amphora (service_type distributor): the distributor it serves.
    distributor_id: Mapped[str | None] = mapped_column(
        String(36),
        ForeignKey("distributor.id", ondelete="SET NULL"),
        index=True,
    )

    load_balancer: Mapped[LoadBalancer | None] = relationship(back_populates="amphorae")


class AmphoraHealth(Base):
    __tablename__ = "amphora_health"
    amphora_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    last_update: Mapped[datetime.datetime] = mapped_column(DateTime)
    busy: Mapped[bool] = mapped_column(Boolean, default=False)
    # Flow rescue's totals from the amphora's last heartbeat (flows, packets by kind), when
    # its rescue is on: what the dashboard shows.
    flow_rescue: Mapped[dict[str, int] | None] = mapped_column(JSON)


class ListenerStatistics(Base):
    """Octavia's listener_statistics: per listener and amphora, totals kept across HAProxy
    reloads and agent restarts, and the amphora's current connections.

    Invariants: the four totals never decrease; ``sample`` is the last heartbeat's raw counters
    with the HAProxy worker that counted them (``{"worker": pid, "bytes_in": ...}``), so the
    same heartbeat heard by two health managers adds nothing the second time, and a new worker
    (its counters from zero) adds its whole count. Rows of an amphora that is gone stay: the
    listener's totals include what it served."""

    __tablename__ = "listener_statistics"
    listener_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("listener.id", ondelete="CASCADE"), primary_key=True
    )
    amphora_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    active_connections: Mapped[int] = mapped_column(Integer, default=0)
    total_connections: Mapped[int] = mapped_column(BigInteger, default=0)
    request_errors: Mapped[int] = mapped_column(BigInteger, default=0)
    sample: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime)


class AmphoraRegistration(Base):
    """Spec: which load balancers an amphora serves, and through which distributor."""

    __tablename__ = "amphora_registration"
    amphora_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("amphora.id", ondelete="CASCADE"), primary_key=True
    )
    load_balancer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("load_balancer.id", ondelete="CASCADE"), primary_key=True
    )
    distributor_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("distributor.id", ondelete="RESTRICT")
    )


class BgpSpeaker(Timestamps, Base):
    __tablename__ = "distributor_l3_bgp_speaker"
    __table_args__ = (
        CheckConstraint("ip_version IN (4, 6)", name="ip_version"),
        CheckConstraint("local_as BETWEEN 1 AND 4294967295", name="local_as"),
        UniqueConstraint("name", name="uq_distributor_l3_bgp_speaker_name"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    ip_version: Mapped[int] = mapped_column(Integer)
    local_as: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(255))

    peers: Mapped[list[BgpPeer]] = relationship(
        secondary="distributor_l3_bgp_peer_registration", order_by="BgpPeer.created_at"
    )


class BgpPeer(Timestamps, Base):
    """A BGP peer profile. The MD5 password is stored for the amphorae's config drives and is
    never returned by the API."""

    __tablename__ = "distributor_l3_bgp_peer"
    __table_args__ = (
        CheckConstraint("remote_as BETWEEN 1 AND 4294967295", name="remote_as"),
        CheckConstraint("ttl_hops BETWEEN 1 AND 254", name="ttl_hops"),
        CheckConstraint("hold_time = 0 OR hold_time BETWEEN 3 AND 65535", name="hold_time"),
        CheckConstraint(_in("auth_type", c.BGP_AUTH_TYPES), name="auth_type"),
        CheckConstraint(
            f"bfd_transmit_interval_ms BETWEEN {c.BFD_INTERVAL_MIN_MS} AND {c.BFD_INTERVAL_MAX_MS}",
            name="bfd_transmit_interval_ms",
        ),
        CheckConstraint(
            f"bfd_receive_interval_ms BETWEEN {c.BFD_INTERVAL_MIN_MS} AND {c.BFD_INTERVAL_MAX_MS}",
            name="bfd_receive_interval_ms",
        ),
        CheckConstraint(
            f"bfd_detect_multiplier BETWEEN {c.BFD_MULTIPLIER_MIN} AND {c.BFD_MULTIPLIER_MAX}",
            name="bfd_detect_multiplier",
        ),
        UniqueConstraint("name", name="uq_distributor_l3_bgp_peer_name"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    peer_ip: Mapped[str] = mapped_column(String(64))
    remote_as: Mapped[int] = mapped_column(BigInteger)
    auth_type: Mapped[str | None] = mapped_column(String(16))
    ttl_hops: Mapped[int | None] = mapped_column(Integer)
    hold_time: Mapped[int | None] = mapped_column(Integer)
    keepalive_interval: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(255))
    password: Mapped[str | None] = mapped_column(String(80))
    # BFD on the session (the amphora's speaker and the peer detect a dead path in
    # interval x multiplier instead of the hold time).
    bfd_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    bfd_transmit_interval_ms: Mapped[int] = mapped_column(
        Integer, default=c.BFD_DEFAULT_INTERVAL_MS
    )
    bfd_receive_interval_ms: Mapped[int] = mapped_column(Integer, default=c.BFD_DEFAULT_INTERVAL_MS)
    bfd_detect_multiplier: Mapped[int] = mapped_column(Integer, default=c.BFD_DEFAULT_MULTIPLIER)


class BgpPeerRegistration(Base):
    __tablename__ = "distributor_l3_bgp_peer_registration"
    distributor_l3_bgp_speaker_id: Mapped[str] = mapped_column(
        String(36),
        ForeignKey("distributor_l3_bgp_speaker.id", ondelete="CASCADE"),
        primary_key=True,
    )
    distributor_l3_bgp_peer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("distributor_l3_bgp_peer.id", ondelete="RESTRICT"), primary_key=True
    )


class AmphoraBgpSpeakerRegistration(Base):
    __tablename__ = "distributor_l3_amphora_bgp_speaker_registration"
    distributor_l3_bgp_speaker_id: Mapped[str] = mapped_column(
        String(36),
        ForeignKey("distributor_l3_bgp_speaker.id", ondelete="RESTRICT"),
        primary_key=True,
    )
    amphora_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("amphora.id", ondelete="CASCADE"), primary_key=True
    )


class AmphoraVipRegistration(Base):
    __tablename__ = "distributor_l3_amphora_vip_registration"
    __table_args__ = (
        UniqueConstraint(
            "amphora_id",
            "load_balancer_id",
            "nexthop_ip",
            "distributor_l3_bgp_peer_id",
            name="uq_distributor_l3_amphora_vip_registration",
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    amphora_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("amphora.id", ondelete="CASCADE")
    )
    load_balancer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("load_balancer.id", ondelete="CASCADE")
    )
    nexthop_ip: Mapped[str] = mapped_column(String(64))
    distributor_l3_bgp_peer_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("distributor_l3_bgp_peer.id", ondelete="RESTRICT")
    )


class VipRoute(Timestamps, Base):
    """Register VIP (spec P2) as a resource: an anycast route of vip_ip to a next hop that is
    not an amphora (a UDP server on the front end, say), announced by every amphora that runs
    the distributor's speakers, to one peer or (peer null) to every peer of the VIP's family.

    ``port_id`` is the network driver's reservation of vip_ip (one per project, distributor
    and vip_ip, shared by that VIP's routes), so no load balancer is given the address."""

    __tablename__ = "distributor_l3_vip_route"
    __table_args__ = status_checks()
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    distributor_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("distributor.id", ondelete="RESTRICT"), index=True
    )
    vip_ip: Mapped[str] = mapped_column(String(64))
    nexthop_ip: Mapped[str] = mapped_column(String(64))
    distributor_l3_bgp_peer_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("distributor_l3_bgp_peer.id", ondelete="RESTRICT")
    )
    port_id: Mapped[str | None] = mapped_column(String(36))
    provisioning_status: Mapped[str] = mapped_column(String(16))
    operating_status: Mapped[str] = mapped_column(String(16))


# -- floating IPs (Neutron's floatingips) and the virtual-ip object between them and amphorae --

FLOATING_IP_STATUSES = ("ACTIVE", "DOWN", "ERROR")


class VirtualIp(Timestamps, Base):
    """The virtual-ip object of a load balancer (the OpenSDN seed's answer to stale floating IP
    mappings): it stands between the floating IPs bound to the load balancer's VIP port and the
    front-end interfaces of the amphorae that serve it. A floating IP names only this object;
    the interface set follows the amphorae in the very flow steps that register and unregister
    them (``virtual_ip_interface``), so a failover or a scale changes no floating IP row and
    nothing polls. One per load balancer, made with its first registration or association."""

    __tablename__ = "virtual_ip"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    load_balancer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("load_balancer.id", ondelete="CASCADE"), unique=True
    )
    vip_address: Mapped[str] = mapped_column(String(64))
    vip_port_id: Mapped[str | None] = mapped_column(String(36))

    interfaces: Mapped[list[VirtualIpInterface]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="VirtualIpInterface.created_at"
    )
    floating_ips: Mapped[list[FloatingIp]] = relationship(
        back_populates="virtual_ip", lazy="selectin", order_by="FloatingIp.floating_ip_address"
    )


class VirtualIpInterface(Base):
    """One amphora front-end interface behind a virtual-ip: written when the amphora is
    registered (Register Amphora), removed when it is unregistered or deleted."""

    __tablename__ = "virtual_ip_interface"
    virtual_ip_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("virtual_ip.id", ondelete="CASCADE"), primary_key=True
    )
    amphora_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("amphora.id", ondelete="CASCADE"), primary_key=True
    )
    port_id: Mapped[str | None] = mapped_column(String(36))  # the amphora's front-end port
    ip_address: Mapped[str] = mapped_column(String(64))  # its front-end IP: the next hop
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class FloatingIp(Timestamps, Base):
    """Neutron's floating IP. ``floating_port_id`` is the network driver's reservation of the
    address on an external subnet; ``port_id`` / ``fixed_ip_address`` the association as
    Neutron shows it (a load balancer's VIP port and the VIP); ``virtual_ip_id`` where it is
    bound when that port is a VIP port. One floating IP per fixed IP of a port."""

    __tablename__ = "floating_ip"
    __table_args__ = (
        CheckConstraint(_in("status", FLOATING_IP_STATUSES), name="status"),
        UniqueConstraint(
            "floating_network_id", "floating_ip_address", name="uq_floating_ip_address"
        ),
        UniqueConstraint("port_id", "fixed_ip_address", name="uq_floating_ip_fixed_ip"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    description: Mapped[str | None] = mapped_column(String(255))
    floating_network_id: Mapped[str] = mapped_column(String(36))
    floating_subnet_id: Mapped[str] = mapped_column(String(36))
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    floating_port_id: Mapped[str | None] = mapped_column(String(36))
    port_id: Mapped[str | None] = mapped_column(String(36))
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64))
    virtual_ip_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("virtual_ip.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="DOWN")

    virtual_ip: Mapped[VirtualIp | None] = relationship(back_populates="floating_ips")


class Listener(ProvisionedMixin, Base):
    __tablename__ = "listener"
    __table_args__ = (
        *status_checks(),
        UniqueConstraint("load_balancer_id", "protocol_port", name="uq_listener_lb_port"),
        CheckConstraint(_in("protocol", c.LISTENER_PROTOCOLS), name="protocol"),
    )
    protocol: Mapped[str] = mapped_column(String(16))
    protocol_port: Mapped[int] = mapped_column(Integer)
    connection_limit: Mapped[int | None] = mapped_column(Integer)
    load_balancer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("load_balancer.id"), index=True
    )
    default_pool_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("pool.id", ondelete="SET NULL")
    )
    timeout_client_data: Mapped[int | None] = mapped_column(Integer)
    timeout_member_connect: Mapped[int | None] = mapped_column(Integer)
    timeout_member_data: Mapped[int | None] = mapped_column(Integer)
    timeout_tcp_inspect: Mapped[int | None] = mapped_column(Integer)
    insert_headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    allowed_cidrs: Mapped[list[Any] | None] = mapped_column(JSON)

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="listeners")
    default_pool: Mapped[Pool | None] = relationship(foreign_keys=[default_pool_id])


class Pool(ProvisionedMixin, Base):
    __tablename__ = "pool"
    __table_args__ = (
        *status_checks(),
        CheckConstraint(_in("protocol", c.POOL_PROTOCOLS), name="protocol"),
        CheckConstraint(_in("lb_algorithm", c.LB_ALGORITHMS), name="lb_algorithm"),
    )
    protocol: Mapped[str] = mapped_column(String(16))
    lb_algorithm: Mapped[str] = mapped_column(String(255))
    load_balancer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("load_balancer.id"), index=True
    )
    session_persistence: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    load_balancer: Mapped[LoadBalancer] = relationship(back_populates="pools")
    members: Mapped[list[Member]] = relationship(
        back_populates="pool", order_by="Member.created_at"
    )
    health_monitor: Mapped[HealthMonitor | None] = relationship(
        back_populates="pool", uselist=False
    )
    listeners: Mapped[list[Listener]] = relationship(
        foreign_keys="Listener.default_pool_id", viewonly=True
    )


class Member(ProvisionedMixin, Base):
    __tablename__ = "member"
    __table_args__ = (
        *status_checks(),
        UniqueConstraint("pool_id", "ip_address", "protocol_port", name="uq_member_address"),
    )
    pool_id: Mapped[str] = mapped_column(String(36), ForeignKey("pool.id"), index=True)
    subnet_id: Mapped[str | None] = mapped_column(String(36))
    ip_address: Mapped[str] = mapped_column(String(64))
    protocol_port: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int | None] = mapped_column(Integer)
    backup: Mapped[bool] = mapped_column(Boolean, default=False)
    monitor_address: Mapped[str | None] = mapped_column(String(64))
    monitor_port: Mapped[int | None] = mapped_column(Integer)

    pool: Mapped[Pool] = relationship(back_populates="members")


class HealthMonitor(ProvisionedMixin, Base):
    __tablename__ = "health_monitor"
    __table_args__ = (
        *status_checks(),
        CheckConstraint(_in("type", c.HEALTH_MONITOR_TYPES), name="type"),
        UniqueConstraint("pool_id", name="uq_health_monitor_pool_id"),
    )
    pool_id: Mapped[str] = mapped_column(String(36), ForeignKey("pool.id"))
    type: Mapped[str] = mapped_column(String(36))
    delay: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[int] = mapped_column(Integer)
    fall_threshold: Mapped[int] = mapped_column(Integer)
    rise_threshold: Mapped[int] = mapped_column(Integer)
    http_method: Mapped[str | None] = mapped_column(String(16))
    url_path: Mapped[str | None] = mapped_column(String(2048))
    expected_codes: Mapped[str | None] = mapped_column(String(64))
    domain_name: Mapped[str | None] = mapped_column(String(255))
    http_version: Mapped[float | None] = mapped_column(Float)

    pool: Mapped[Pool] = relationship(back_populates="health_monitor")


class ApiToken(Timestamps, Base):
    """Bearer tokens for production mode: only a SHA-256 of the token is stored."""

    __tablename__ = "api_token"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    project_id: Mapped[str] = mapped_column(String(36))
    roles: Mapped[list[Any]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


# -- the static network driver's state (networks, subnets, ports, IPAM) ----------------------


class NetNetwork(Timestamps, Base):
    """A network the operator defined (the static network driver); ``bridge`` names a Linux
    bridge only where someone wires ports into it (the lab's own networks)."""

    __tablename__ = "net_network"
    __table_args__ = (UniqueConstraint("name", name="uq_net_network_name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(36))
    bridge: Mapped[str | None] = mapped_column(String(15))
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    router_external: Mapped[bool] = mapped_column(Boolean, default=False)


class NetSubnet(Timestamps, Base):
    __tablename__ = "net_subnet"
    __table_args__ = (
        UniqueConstraint("name", name="uq_net_subnet_name"),
        CheckConstraint("ip_version IN (4, 6)", name="ip_version"),
        CheckConstraint(
            "role IN ('anycast', 'frontend', 'management', 'member', 'external')", name="role"
        ),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("net_network.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    cidr: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)
    gateway_ip: Mapped[str | None] = mapped_column(String(64))
    # Addresses handed out start at this host index (below it: gateway and reserved).
    first_host_index: Mapped[int] = mapped_column(Integer, default=10)
    # What the subnet is for (l3dist.network.models.SUBNET_ROLES), set by the operator.
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")


class NetPort(Timestamps, Base):
    """A port: an address reservation with a MAC (a host's agent makes it real; the lab's own
    networks wire one as a veth pair from the network's bridge into a namespace).

    device_owner and device_id are recorded as Neutron does (floating IPs depend on them)."""

    __tablename__ = "net_port"
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("net_network.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(255))
    device_id: Mapped[str | None] = mapped_column(String(255), index=True)
    device_owner: Mapped[str | None] = mapped_column(String(255))
    mac_address: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    project_id: Mapped[str | None] = mapped_column(String(36))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    namespace: Mapped[str | None] = mapped_column(String(255))
    ifname: Mapped[str | None] = mapped_column(String(15))

    fixed_ips: Mapped[list[NetIpAllocation]] = relationship(
        back_populates="port", cascade="all, delete-orphan", lazy="selectin"
    )


class NetIpAllocation(Base):
    """IPAM: one row per address in use; the primary key forbids handing one out twice."""

    __tablename__ = "net_ip_allocation"
    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("net_subnet.id", ondelete="CASCADE"), primary_key=True
    )
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("net_port.id", ondelete="CASCADE"), index=True
    )

    port: Mapped[NetPort] = relationship(back_populates="fixed_ips")


# -- the amphora host pool (the hosts compute driver) -------------------------------------------


class AmphoraHost(Timestamps, Base):
    """A pre-provisioned host (VM or bare metal) running the l3dist agent, in the pool the
    ``hosts`` compute driver takes amphorae from.

    Invariants: ``token_hash`` is set only while the host waits for enrollment (one use, until
    ``token_expires_at``); a host holds at most one amphora (``amphora_id`` unique) and only
    while ALLOCATED; ``enabled`` False keeps a host out of new claims whatever its status."""

    __tablename__ = "amphora_host"
    __table_args__ = (
        UniqueConstraint("name", name="uq_amphora_host_name"),
        UniqueConstraint("amphora_id", name="uq_amphora_host_amphora_id"),
        UniqueConstraint("token_hash", name="uq_amphora_host_token_hash"),
        CheckConstraint(
            "status IN ('PENDING_ENROLLMENT', 'AVAILABLE', 'ALLOCATED', 'UNREACHABLE')",
            name="status",
        ),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="PENDING_ENROLLMENT")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    hostname: Mapped[str | None] = mapped_column(String(255))
    management_address: Mapped[str | None] = mapped_column(String(64))
    agent_port: Mapped[int] = mapped_column(Integer, default=9443)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    token_expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    enrolled_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    certificate_serial: Mapped[str | None] = mapped_column(String(64))
    amphora_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("amphora.id", ondelete="SET NULL")
    )


# -- the controller worker's job queue ---------------------------------------------------------


class WorkerJob(Timestamps, Base):
    """A unit of controller work (a flow), queued by the API in the same transaction as the
    status change it answers, so no accepted request is lost. The flow's progress lives in the
    taskflow tables (logbooks, flowdetails, atomdetails) under ``id``; a job whose worker stopped
    heartbeating is taken over and resumed from there."""

    __tablename__ = "worker_job"
    __table_args__ = (CheckConstraint(_in("state", c.JOB_STATES), name="state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    flow: Mapped[str] = mapped_column(String(64))
    # The object the flow works on (a load balancer, an amphora...); one job at a time each.
    target_id: Mapped[str] = mapped_column(String(36), index=True)
    arguments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default=c.JOB_PENDING, index=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(2048))


class BmpRouter(Base):
    """A router that streams BMP to l3dist's collector (``l3dist routerview``), by the address
    its BMP session comes from; name and description as its Initiation message gives them.
    ``connected`` False: its session is down and the paths below are its last view."""

    __tablename__ = "bmp_router"
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    connected_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class BmpPeer(Base):
    """A BGP session of a router, by the peer's address: up (Peer Up) or down since ``since``
    (listed for a while after Peer Down)."""

    __tablename__ = "bmp_peer"
    router_address: Mapped[str] = mapped_column(
        String(64), ForeignKey("bmp_router.address", ondelete="CASCADE"), primary_key=True
    )
    peer_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    asn: Mapped[int | None] = mapped_column(BigInteger)
    bgp_id: Mapped[str | None] = mapped_column(String(64))
    up: Mapped[bool] = mapped_column(Boolean, default=True)
    since: Mapped[datetime.datetime] = mapped_column(DateTime)


class BmpPath(Base):
    """One prefix a router received from one peer: the next hop before its inbound policy
    (``pre_next_hop``, its Adj-RIB-In) and after it (``post_next_hop``; None: rejected, or
    ``pending`` while the router has not confirmed its decision). The times are when the
    collector received each (the routers' own BMP timestamps have one-second resolution)."""

    __tablename__ = "bmp_path"
    router_address: Mapped[str] = mapped_column(
        String(64), ForeignKey("bmp_router.address", ondelete="CASCADE"), primary_key=True
    )
    peer_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    pre_next_hop: Mapped[str | None] = mapped_column(String(64))
    post_next_hop: Mapped[str | None] = mapped_column(String(64))
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    as_path: Mapped[str | None] = mapped_column(String(255))
    pre_received_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    post_received_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
