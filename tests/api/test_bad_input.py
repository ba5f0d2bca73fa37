"""Bad input gets 400/404/409 with a message naming the field, and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import ADMIN, ANYCAST_V4, ANYCAST_V6, TENANT_A, TENANT_B, Api, world_fixtures


@dataclass
class World:
    lb: dict[str, Any]
    listener: dict[str, Any]
    pool: dict[str, Any]
    peer: dict[str, Any]
    speaker: dict[str, Any]
    distributor: dict[str, Any]
    peer6: dict[str, Any]
    tcp_pool: dict[str, Any]


def build_world(api: Api) -> World:
    """A load balancer with an HTTP listener and pool and a TCP pool, BGP peers (v4, v6) and a
    speaker, and an L3_BGP distributor: what the bad requests below aim at."""
    lb = api.create_lb()
    listener = api.create(
        "/v2/lbaas/listeners",
        "listener",
        loadbalancer_id=lb["id"],
        protocol="HTTP",
        protocol_port=80,
    )
    pool = api.create(
        "/v2/lbaas/pools",
        "pool",
        listener_id=listener["id"],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
    )
    peer = api.create(
        "/v2/lbaas/bgppeers",
        "bgp_peer",
        headers=ADMIN,
        name="tor",
        peer_ip="198.18.0.1",
        remote_as=65000,
    )
    speaker = api.create(
        "/v2/lbaas/bgpspeakers",
        "bgp_speaker",
        headers=ADMIN,
        name="v4",
        ip_version=4,
        local_as=64512,
    )
    api.put(f"/v2/lbaas/bgpspeakers/{speaker['id']}/add_bgp_peer", {"bgp_peer_id": peer["id"]})
    distributor = api.create(
        "/v2/lbaas/distributors",
        "distributor",
        headers=ADMIN,
        name="fabric",
        distributor_type="L3_BGP",
    )
    peer6 = api.create(
        "/v2/lbaas/bgppeers",
        "bgp_peer",
        headers=ADMIN,
        name="tor6",
        peer_ip="fd00:198:18::1",
        remote_as=65000,
    )
    tcp_pool = api.create(
        "/v2/lbaas/pools",
        "pool",
        loadbalancer_id=lb["id"],
        protocol="TCP",
        lb_algorithm="ROUND_ROBIN",
    )
    return World(lb, listener, pool, peer, speaker, distributor, peer6, tcp_pool)


world_template, db_url, world = world_fixtures(build_world)


PEER = {"peer_ip": "198.18.0.2", "remote_as": 65000}
LB = {"vip_subnet_id": ANYCAST_V4.id}

# (id, method, path, body or params, headers, status, field named)
CASES: list[tuple[str, str, str, Any, dict[str, str], int, str]] = [
    (
        "asn-zero",
        "POST",
        "/v2/lbaas/bgpspeakers",
        {"bgp_speaker": {"ip_version": 4, "local_as": 0}},
        ADMIN,
        400,
        "local_as",
    ),
    (
        "asn-too-big",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "remote_as": 4294967296}},
        ADMIN,
        400,
        "remote_as",
    ),
    (
        "asn-update",
        "PUT",
        "/v2/lbaas/bgppeers/{peer}",
        {"bgp_peer": {"remote_as": -1}},
        ADMIN,
        400,
        "remote_as",
    ),
    (
        "ttl-zero",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "ttl_hops": 0}},
        ADMIN,
        400,
        "ttl_hops",
    ),
    (
        "ttl-255",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "ttl_hops": 255}},
        ADMIN,
        400,
        "ttl_hops",
    ),
    (
        "hold-2",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "hold_time": 2}},
        ADMIN,
        400,
        "hold_time",
    ),
    (
        "hold-65536",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "hold_time": 65536}},
        ADMIN,
        400,
        "hold_time",
    ),
    (
        "keepalive-not-below-hold",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "hold_time": 9, "keepalive_interval": 9}},
        ADMIN,
        400,
        "keepalive_interval",
    ),
    (
        "keepalive-update",
        "PUT",
        "/v2/lbaas/bgppeers/{peer}",
        {"bgp_peer": {"hold_time": 3, "keepalive_interval": 5}},
        ADMIN,
        400,
        "keepalive_interval",
    ),
    (
        "bfd-interval-too-fast",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "bfd_enabled": True, "bfd_transmit_interval_ms": 5}},
        ADMIN,
        400,
        "bfd_transmit_interval_ms",
    ),
    (
        "bfd-receive-interval-too-slow",
        "PUT",
        "/v2/lbaas/bgppeers/{peer}",
        {"bgp_peer": {"bfd_receive_interval_ms": 60001}},
        ADMIN,
        400,
        "bfd_receive_interval_ms",
    ),
    (
        "bfd-multiplier-one",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "bfd_detect_multiplier": 1}},
        ADMIN,
        400,
        "bfd_detect_multiplier",
    ),
    (
        "bfd-enabled-not-boolean",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "bfd_enabled": "yes"}},
        ADMIN,
        400,
        "bfd_enabled",
    ),
    (
        "md5-without-password",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "auth_type": "md5"}},
        ADMIN,
        400,
        "password",
    ),
    (
        "password-without-md5",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "password": "x"}},
        ADMIN,
        400,
        "password",
    ),
    (
        "auth-type-unknown",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "auth_type": "sha1"}},
        ADMIN,
        400,
        "auth_type",
    ),
    (
        "peer-ip-malformed",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "peer_ip": "198.18.0.300"}},
        ADMIN,
        400,
        "peer_ip",
    ),
    (
        "peer-wrong-family-for-speaker",
        "PUT",
        "/v2/lbaas/bgpspeakers/{speaker}/add_bgp_peer",
        {"bgp_peer_id": "{peer6}"},
        ADMIN,
        400,
        "bgp_peer_id",
    ),
    (
        "speaker-ip-version-5",
        "POST",
        "/v2/lbaas/bgpspeakers",
        {"bgp_speaker": {"ip_version": 5, "local_as": 1}},
        ADMIN,
        400,
        "ip_version",
    ),
    (
        "vip-wrong-family",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "vip_address": "fd00:198:18:100::5"}},
        TENANT_A,
        400,
        "vip_address",
    ),
    (
        "vip-outside-subnet",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "vip_address": "198.18.101.5"}},
        TENANT_A,
        400,
        "vip_address",
    ),
    (
        "speaker-not-installed",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "speaker_driver": "gobgp"}},
        TENANT_A,
        400,
        "speaker_driver",
    ),
    (
        "vip-port-not-a-reservation",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {"vip_port_id": "nope"}},
        TENANT_A,
        400,
        "vip_port_id",
    ),
    (
        "vip-in-use",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "vip_address": "{vip}"}},
        TENANT_A,
        409,
        "vip_address",
    ),
    (
        "frontend-wrong-family",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "frontend_subnet_id": ANYCAST_V6.id}},
        TENANT_A,
        400,
        "frontend_subnet_id",
    ),
    (
        "unknown-subnet",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {"vip_subnet_id": "no-such-subnet"}},
        TENANT_A,
        404,
        "vip_subnet_id",
    ),
    (
        "no-vip-subnet",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {"name": "x"}},
        TENANT_A,
        400,
        "vip_subnet_id",
    ),
    (
        "unknown-distributor",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "topology": "ACTIVE_ACTIVE", "distributor_id": "nope"}},
        TENANT_A,
        404,
        "distributor_id",
    ),
    (
        "distributor-on-single",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "distributor_id": "{distributor}"}},
        TENANT_A,
        400,
        "distributor_id",
    ),
    (
        "amphora-count-on-single",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "topology": "SINGLE", "amphora_count": 3}},
        TENANT_A,
        400,
        "amphora_count",
    ),
    (
        "amphora-count-too-big",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "topology": "ACTIVE_ACTIVE", "amphora_count": 65}},
        TENANT_A,
        400,
        "amphora_count",
    ),
    (
        "unknown-topology",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "topology": "ACTIVE_STANDBY"}},
        TENANT_A,
        400,
        "topology",
    ),
    (
        "unknown-field",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "colour": "blue"}},
        TENANT_A,
        400,
        "colour",
    ),
    (
        "unknown-envelope",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"load_balancer": LB},
        TENANT_A,
        400,
        "loadbalancer",
    ),
    (
        "wrong-type-bool",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "admin_state_up": "yes"}},
        TENANT_A,
        400,
        "admin_state_up",
    ),
    (
        "wrong-type-name",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "name": 12}},
        TENANT_A,
        400,
        "name",
    ),
    (
        "wrong-type-port",
        "POST",
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": "{lb}", "protocol": "TCP", "protocol_port": "81"}},
        TENANT_A,
        400,
        "protocol_port",
    ),
    (
        "over-long-name",
        "POST",
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {**LB, "name": "x" * 256}},
        TENANT_A,
        400,
        "name",
    ),
    (
        "over-long-description",
        "PUT",
        "/v2/lbaas/loadbalancers/{lb}",
        {"loadbalancer": {"description": "x" * 256}},
        TENANT_A,
        400,
        "description",
    ),
    (
        "port-zero",
        "POST",
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": "{lb}", "protocol": "TCP", "protocol_port": 0}},
        TENANT_A,
        400,
        "protocol_port",
    ),
    (
        "listener-unknown-protocol",
        "POST",
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": "{lb}", "protocol": "SMTP", "protocol_port": 25}},
        TENANT_A,
        400,
        "protocol",
    ),
    (
        "listener-unknown-lb",
        "POST",
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": "nope", "protocol": "TCP", "protocol_port": 81}},
        TENANT_A,
        404,
        "loadbalancer_id",
    ),
    (
        "listener-foreign-lb",
        "POST",
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": "{lb}", "protocol": "TCP", "protocol_port": 81}},
        TENANT_B,
        404,
        "loadbalancer_id",
    ),
    (
        "insert-headers-on-tcp",
        "POST",
        "/v2/lbaas/listeners",
        {
            "listener": {
                "loadbalancer_id": "{lb}",
                "protocol": "TCP",
                "protocol_port": 81,
                "insert_headers": {"X-Forwarded-For": "true"},
            }
        },
        TENANT_A,
        400,
        "insert_headers",
    ),
    (
        "pool-protocol-mismatch",
        "PUT",
        "/v2/lbaas/listeners/{listener}",
        {"listener": {"default_pool_id": "{tcp_pool}"}},
        TENANT_A,
        400,
        "default_pool_id",
    ),
    (
        "pool-bad-algorithm",
        "POST",
        "/v2/lbaas/pools",
        {"pool": {"loadbalancer_id": "{lb}", "protocol": "HTTP", "lb_algorithm": "RANDOM"}},
        TENANT_A,
        400,
        "lb_algorithm",
    ),
    (
        "pool-app-cookie-without-name",
        "POST",
        "/v2/lbaas/pools",
        {
            "pool": {
                "loadbalancer_id": "{lb}",
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
                "session_persistence": {"type": "APP_COOKIE"},
            }
        },
        TENANT_A,
        400,
        "session_persistence",
    ),
    (
        "member-bad-address",
        "POST",
        "/v2/lbaas/pools/{pool}/members",
        {"member": {"address": "not-an-ip", "protocol_port": 80}},
        TENANT_A,
        400,
        "address",
    ),
    (
        "member-weight",
        "POST",
        "/v2/lbaas/pools/{pool}/members",
        {"member": {"address": "198.18.3.9", "protocol_port": 80, "weight": 257}},
        TENANT_A,
        400,
        "weight",
    ),
    (
        "member-outside-subnet",
        "POST",
        "/v2/lbaas/pools/{pool}/members",
        {"member": {"address": "198.18.9.9", "protocol_port": 80, "subnet_id": "{member_subnet}"}},
        TENANT_A,
        400,
        "address",
    ),
    (
        "member-foreign-pool",
        "POST",
        "/v2/lbaas/pools/{pool}/members",
        {"member": {"address": "198.18.3.9", "protocol_port": 80}},
        TENANT_B,
        404,
        "Pool",
    ),
    (
        "hm-timeout-above-delay",
        "POST",
        "/v2/lbaas/healthmonitors",
        {
            "healthmonitor": {
                "pool_id": "{pool}",
                "type": "TCP",
                "delay": 2,
                "timeout": 5,
                "max_retries": 3,
            }
        },
        TENANT_A,
        400,
        "timeout",
    ),
    (
        "hm-url-on-tcp",
        "POST",
        "/v2/lbaas/healthmonitors",
        {
            "healthmonitor": {
                "pool_id": "{pool}",
                "type": "TCP",
                "delay": 5,
                "timeout": 2,
                "max_retries": 3,
                "url_path": "/x",
            }
        },
        TENANT_A,
        400,
        "url_path",
    ),
    (
        "hm-bad-codes",
        "POST",
        "/v2/lbaas/healthmonitors",
        {
            "healthmonitor": {
                "pool_id": "{pool}",
                "type": "HTTP",
                "delay": 5,
                "timeout": 2,
                "max_retries": 3,
                "expected_codes": "2xx",
            }
        },
        TENANT_A,
        400,
        "expected_codes",
    ),
    ("delete-peer-in-use", "DELETE", "/v2/lbaas/bgppeers/{peer}", None, ADMIN, 409, "speaker"),
    ("delete-speaker-unknown", "DELETE", "/v2/lbaas/bgpspeakers/nope", None, ADMIN, 404, "nope"),
    (
        "duplicate-peer-name",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": {**PEER, "name": "tor"}},
        ADMIN,
        409,
        "name",
    ),
    (
        "duplicate-speaker-name",
        "POST",
        "/v2/lbaas/bgpspeakers",
        {"bgp_speaker": {"ip_version": 6, "local_as": 1, "name": "v4"}},
        ADMIN,
        409,
        "name",
    ),
    (
        "duplicate-distributor-name",
        "POST",
        "/v2/lbaas/distributors",
        {"distributor": {"distributor_type": "L3_BGP", "name": "fabric"}},
        ADMIN,
        409,
        "name",
    ),
    (
        "distributor-bad-type",
        "POST",
        "/v2/lbaas/distributors",
        {"distributor": {"distributor_type": "L2_VRRP"}},
        ADMIN,
        400,
        "distributor_type",
    ),
    (
        "distributor-unknown-speaker",
        "POST",
        "/v2/lbaas/distributors",
        {
            "distributor": {
                "distributor_type": "L3_BGP",
                "config_data": {"bgp_speaker_ids": ["nope"]},
            }
        },
        ADMIN,
        400,
        "bgp_speaker_ids",
    ),
    (
        "distributor-multicast-router-mac",
        "POST",
        "/v2/lbaas/distributors",
        {
            "distributor": {
                "distributor_type": "L3_BGP",
                "config_data": {"router_macs": ["01:00:5e:00:00:01"]},
            }
        },
        ADMIN,
        400,
        "router_macs",
    ),
    (
        "distributor-malformed-router-mac",
        "POST",
        "/v2/lbaas/distributors",
        {"distributor": {"distributor_type": "L3_BGP", "config_data": {"router_macs": "aa"}}},
        ADMIN,
        400,
        "router_macs",
    ),
    (
        "distributor-unknown-config-key",
        "POST",
        "/v2/lbaas/distributors",
        {"distributor": {"distributor_type": "L3_BGP", "config_data": {"asn": 1}}},
        ADMIN,
        400,
        "asn",
    ),
    (
        "tenant-on-admin-resource",
        "POST",
        "/v2/lbaas/bgppeers",
        {"bgp_peer": PEER},
        TENANT_A,
        403,
        "Policy",
    ),
    (
        "filter-unknown-field",
        "GET",
        "/v2/lbaas/loadbalancers",
        {"colour": "blue"},
        TENANT_A,
        400,
        "colour",
    ),
    (
        "sort-unknown-field",
        "GET",
        "/v2/lbaas/loadbalancers",
        {"sort": "colour:asc"},
        TENANT_A,
        400,
        "sort",
    ),
    ("limit-zero", "GET", "/v2/lbaas/loadbalancers", {"limit": "0"}, TENANT_A, 400, "limit"),
    (
        "marker-unknown",
        "GET",
        "/v2/lbaas/loadbalancers",
        {"marker": "nope"},
        TENANT_A,
        400,
        "marker",
    ),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, real in ids.items():
            value = value.replace("{" + key + "}", real)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize(
    ("method", "path", "payload", "headers", "status", "named"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_is_refused_and_changes_nothing(
    api: Api,
    world: World,
    method: str,
    path: str,
    payload: Any,
    headers: dict[str, str],
    status: int,
    named: str,
) -> None:
    from .conftest import MEMBER_V4

    ids = {
        "lb": world.lb["id"],
        "listener": world.listener["id"],
        "pool": world.pool["id"],
        "peer": world.peer["id"],
        "speaker": world.speaker["id"],
        "peer6": world.peer6["id"],
        "distributor": world.distributor["id"],
        "vip": world.lb["vip_address"],
        "tcp_pool": world.tcp_pool["id"],
        "member_subnet": MEMBER_V4.id,
    }
    path, payload = _fill(path, ids), _fill(payload, ids)
    before = api.snapshot()
    if method == "GET":
        response = api.get(path, headers, params=payload)
    elif method == "DELETE":
        response = api.delete(path, headers)
    else:
        response = api.client.request(method, path, json=payload, headers=headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert named in body["faultstring"] or named == body.get("field"), body
    assert api.snapshot() == before
