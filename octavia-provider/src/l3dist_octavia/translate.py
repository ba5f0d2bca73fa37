"""Octavia's provider data models (octavia-lib, with ``Unset`` fields) as l3dist bodies.

l3dist refuses unknown fields, so each body is built from a list of the fields l3dist has;
what Octavia can ask for but l3dist does not do (TLS termination, L7, UDP/SCTP, extra VIPs,
security groups, availability zones, fully populated trees) is refused here with
``UnsupportedOptionError`` naming the option, before anything is sent. Unset and None both
mean "not given": l3dist applies its own defaults (and, on update, keeps the value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from octavia_lib.api.drivers import data_models as dm
from octavia_lib.api.drivers import exceptions as exc

LISTENER_PROTOCOLS = ("HTTP", "HTTPS", "TCP")  # HTTPS passes through: no TLS termination
POOL_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "PROXY")
LB_ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP")
MONITOR_TYPES = ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO")

LB_UPDATE_FIELDS = ("name", "description", "admin_state_up", "vip_qos_policy_id")
LISTENER_FIELDS = (
    "name", "description", "admin_state_up", "connection_limit", "default_pool_id",
    "insert_headers", "timeout_client_data", "timeout_member_connect", "timeout_member_data",
    "timeout_tcp_inspect", "allowed_cidrs",
)  # fmt: skip
LISTENER_TLS = (
    "default_tls_container_ref", "default_tls_container_data", "sni_container_refs",
    "sni_container_data", "client_ca_tls_container_ref", "client_ca_tls_container_data",
    "client_crl_container_ref", "client_crl_container_data", "tls_versions", "tls_ciphers",
    "alpn_protocols", "hsts_max_age", "hsts_include_subdomains", "hsts_preload",
)  # fmt: skip
POOL_FIELDS = ("name", "description", "admin_state_up", "lb_algorithm", "session_persistence")
POOL_TLS = (
    "tls_container_ref", "tls_container_data", "ca_tls_container_ref", "ca_tls_container_data",
    "crl_container_ref", "crl_container_data", "tls_versions", "tls_ciphers", "alpn_protocols",
)  # fmt: skip
MEMBER_UPDATE_FIELDS = (
    "name", "admin_state_up", "weight", "backup", "monitor_address", "monitor_port",
)  # fmt: skip
MONITOR_UPDATE_FIELDS = (
    "name", "admin_state_up", "delay", "timeout", "max_retries", "max_retries_down",
    "http_method", "url_path", "expected_codes", "domain_name", "http_version",
)  # fmt: skip
PERSISTENCE_FIELDS = ("type", "cookie_name", "persistence_timeout", "persistence_granularity")


def given(value: Any) -> bool:
    """Octavia said something: neither Unset nor None."""
    return value is not None and not isinstance(value, dm.UnsetType)


def refuse(option: str, why: str) -> exc.UnsupportedOptionError:
    return exc.UnsupportedOptionError(
        user_fault_string=f"l3dist does not support {option}: {why}",
        operator_fault_string=f"l3dist provider refused {option}: {why}",
    )


def pick(model: dm.BaseDataModel, names: tuple[str, ...]) -> dict[str, Any]:
    """The named fields Octavia gave, as they are."""
    return {name: getattr(model, name) for name in names if given(getattr(model, name, None))}


def _refuse_given(model: dm.BaseDataModel, names: tuple[str, ...], why: str) -> None:
    for name in names:
        value = getattr(model, name, None)
        if given(value) and value not in ([], {}, False):
            raise refuse(name, why)


def _one_of(model: dm.BaseDataModel, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(model, name, None)
    if given(value) and value not in allowed:
        raise refuse(f"{name} {value}", f"l3dist has {', '.join(allowed)}")


@dataclass(frozen=True)
class Topology:
    """Where an Octavia load balancer goes in l3dist (from its flavor and the driver's
    defaults): always ACTIVE_ACTIVE, on a distributor."""

    amphora_count: int
    distributor_id: str | None
    speaker_driver: str | None = None  # None: l3dist's default


def loadbalancer_body(lb: dm.LoadBalancer, topology: Topology) -> dict[str, Any]:
    """POST /v2/lbaas/loadbalancers: Octavia's id, project and VIP (the reservation
    create_vip_port made in l3dist's anycast pool, its subnet and address)."""
    _refuse_given(lb, ("additional_vips",), "a load balancer has one VIP")
    _refuse_given(lb, ("vip_sg_ids",), "l3dist has no security groups on VIPs")
    if given(lb.availability_zone) and lb.availability_zone not in ({}, ""):
        raise refuse("availability_zone", "l3dist has no availability zones")
    body = pick(lb, ("name", "description", "admin_state_up", "project_id", "vip_qos_policy_id"))
    # The subnet says the network: Octavia also passes the network its network driver gave
    # the VIP port, which l3dist need not know (Octavia's noop driver makes one up).
    body.update(pick(lb, ("vip_subnet_id",) if given(lb.vip_subnet_id) else ("vip_network_id",)))
    if given(lb.vip_address):
        body["vip_address"] = str(lb.vip_address)
    if given(lb.vip_port_id):  # the reservation create_vip_port made: adopted
        body["vip_port_id"] = lb.vip_port_id
    body.update(
        id=lb.loadbalancer_id,
        topology="ACTIVE_ACTIVE",
        amphora_count=topology.amphora_count,
        provider="l3dist",
    )
    if topology.distributor_id:
        body["distributor_id"] = topology.distributor_id
    if topology.speaker_driver:
        body["speaker_driver"] = topology.speaker_driver
    body.update(populated(lb))
    return body


def populated(lb: dm.LoadBalancer) -> dict[str, Any]:
    """Octavia's fully populated create as l3dist's: each listener with its default pool in
    it (members and monitor too), and the pools no listener uses in ``pools``. Octavia lists
    every pool in ``pools`` and the default ones again under their listeners. Made and built
    by l3dist in one request and one flow."""
    listeners = lb.listeners if given(lb.listeners) else []
    pools = {p.pool_id: p for p in (lb.pools if given(lb.pools) else [])}
    body: dict[str, Any] = {}
    if listeners:
        entries = []
        for listener in listeners:
            entry = _listener_fields(listener)
            default = listener.default_pool if given(listener.default_pool) else None
            if default is None and given(listener.default_pool_id):
                default = pools.get(listener.default_pool_id)
            if default is not None:
                pools.pop(default.pool_id, None)
                entry["default_pool"] = _populated_pool(default)
            entries.append(entry)
        body["listeners"] = entries
    if pools:
        body["pools"] = [_populated_pool(pool) for pool in pools.values()]
    return body


def _populated_pool(pool: dm.Pool) -> dict[str, Any]:
    body = _pool_checks(pool, children=True)
    body.update(id=pool.pool_id, protocol=pool.protocol)
    members = pool.members if given(pool.members) else []
    if members:
        body["members"] = [member_body(member) for member in members]
    if given(pool.healthmonitor):
        monitor = health_monitor_body(pool.healthmonitor)
        monitor.pop("pool_id", None)
        body["healthmonitor"] = monitor
    return body


def loadbalancer_update_body(new: dm.LoadBalancer) -> dict[str, Any]:
    _refuse_given(new, ("vip_sg_ids",), "l3dist has no security groups on VIPs")
    return pick(new, LB_UPDATE_FIELDS)


def _listener_checks(listener: dm.Listener, graph: bool = False) -> None:
    """graph: in a fully populated create, where the default pool comes with it."""
    _one_of(listener, "protocol", LISTENER_PROTOCOLS)
    _refuse_given(listener, LISTENER_TLS, "l3dist does not terminate TLS")
    _refuse_given(listener, ("l7policies",), "l3dist has no L7 policies")
    if not graph:
        _refuse_given(listener, ("default_pool",), "create the pool with its own call")
    if given(listener.client_authentication) and listener.client_authentication != "NONE":
        raise refuse("client_authentication", "l3dist does not terminate TLS")


def listener_body(listener: dm.Listener) -> dict[str, Any]:
    return {**_listener_fields(listener, graph=False), "loadbalancer_id": listener.loadbalancer_id}


def _listener_fields(listener: dm.Listener, graph: bool = True) -> dict[str, Any]:
    _listener_checks(listener, graph)
    body = pick(listener, LISTENER_FIELDS)
    if graph:  # the pool comes in the body: no id of one made before
        body.pop("default_pool_id", None)
    body.update(
        id=listener.listener_id, protocol=listener.protocol, protocol_port=listener.protocol_port
    )
    return body


def listener_update_body(new: dm.Listener) -> dict[str, Any]:
    _listener_checks(new)
    return pick(new, LISTENER_FIELDS)


def _pool_checks(pool: dm.Pool, children: bool = False) -> dict[str, Any]:
    """children: in a fully populated create, where members and monitor come with it."""
    _one_of(pool, "protocol", POOL_PROTOCOLS)
    _one_of(pool, "lb_algorithm", LB_ALGORITHMS)
    _refuse_given(pool, POOL_TLS, "l3dist does not re-encrypt to members")
    _refuse_given(pool, ("tls_enabled",), "l3dist does not re-encrypt to members")
    if not children:
        _refuse_given(pool, ("members", "healthmonitor"), "create each child with its own call")
    body = pick(pool, POOL_FIELDS)
    if "session_persistence" in body:
        persistence = {k: v for k, v in body["session_persistence"].items() if given(v)}
        body["session_persistence"] = {
            k: persistence[k] for k in PERSISTENCE_FIELDS if k in persistence
        }
    return body


def pool_body(pool: dm.Pool) -> dict[str, Any]:
    body = _pool_checks(pool)
    body.update(id=pool.pool_id, protocol=pool.protocol)
    body.update(pick(pool, ("loadbalancer_id", "listener_id")))
    return body


def pool_update_body(new: dm.Pool) -> dict[str, Any]:
    return _pool_checks(new)


def _member_checks(member: dm.Member) -> None:
    if given(member.vnic_type) and member.vnic_type != "normal":
        raise refuse(f"vnic_type {member.vnic_type}", "l3dist reaches members over IP only")


def member_body(member: dm.Member) -> dict[str, Any]:
    """A member as POST .../members (and each entry of the batch update) takes it."""
    _member_checks(member)
    body = pick(member, (*MEMBER_UPDATE_FIELDS, "subnet_id"))
    body.update(id=member.member_id, address=member.address, protocol_port=member.protocol_port)
    return body


def member_update_body(new: dm.Member) -> dict[str, Any]:
    _member_checks(new)
    return pick(new, MEMBER_UPDATE_FIELDS)


def health_monitor_body(hm: dm.HealthMonitor) -> dict[str, Any]:
    _one_of(hm, "type", MONITOR_TYPES)
    body = pick(hm, MONITOR_UPDATE_FIELDS)
    body.update(id=hm.healthmonitor_id, pool_id=hm.pool_id, type=hm.type)
    return body


def health_monitor_update_body(new: dm.HealthMonitor) -> dict[str, Any]:
    return pick(new, MONITOR_UPDATE_FIELDS)
