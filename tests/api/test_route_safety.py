"""Route safety in the API (issue 14): an ACTIVE_ACTIVE (or any) load balancer's VIP comes only
from an anycast pool and its front end only from a front-end subnet; an address something else
uses is refused. Every refusal names the field, changes nothing the API shows, queues no job
and leaves no address reserved in the network driver's IPAM.

Also the admin API that defines the networks (the static driver's): roles, refusals, deletes.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from l3dist.db import models
from l3dist.network.catalog import stable_id

from .conftest import (
    ADMIN,
    ANYCAST_V4,
    ANYCAST_V6,
    FRONTEND_V4,
    MEMBER_V4,
    TENANT_A,
    TENANT_B,
    Api,
    world_fixtures,
)

MGMT_V4 = stable_id("lb-mgmt-net-v4")
MEMBER_NET = stable_id("member-net")
FRONTEND_NET = stable_id("frontend-net")
MEMBER_ADDRESS = "198.18.100.60"  # a member of project B's pool, inside the anycast pool
ROUTER_ADDRESS = "198.18.100.1"  # a BGP peer (the router) numbered inside the pool


def _post_network(api: Api, body: dict[str, Any], headers: dict[str, str] = ADMIN) -> Any:
    return api.post("/v2.0/networks", {"network": body}, headers)


def _post_subnet(api: Api, body: dict[str, Any], headers: dict[str, str] = ADMIN) -> Any:
    return api.post("/v2.0/subnets", {"subnet": body}, headers)


def build_world(api: Api) -> dict[str, str]:
    """Another project's load balancer with a member, a router address in the pool, an
    external (floating-IP) subnet and a second anycast pool with a gateway."""
    other = api.create_lb(TENANT_B, vip_address="198.18.100.150")
    pool = api.create(
        "/v2/lbaas/pools",
        "pool",
        TENANT_B,
        loadbalancer_id=other["id"],
        protocol="TCP",
        lb_algorithm="ROUND_ROBIN",
    )
    api.create(
        f"/v2/lbaas/pools/{pool['id']}/members",
        "member",
        TENANT_B,
        address=MEMBER_ADDRESS,
        protocol_port=80,
    )
    api.create("/v2/lbaas/bgppeers", "bgp_peer", ADMIN, peer_ip=ROUTER_ADDRESS, remote_as=65000)
    api.active_distributor(api.worker)
    external = _post_network(api, {"name": "public", "router:external": True}).json()
    external_subnet = _post_subnet(
        api,
        {
            "name": "public-v4",
            "network_id": external["network"]["id"],
            "cidr": "203.0.113.0/24",
            "role": "external",
        },
    ).json()["subnet"]
    pool2 = _post_network(api, {"name": "anycast-2"}).json()["network"]
    pool2_subnet = _post_subnet(
        api,
        {
            "name": "anycast-2-v4",
            "network_id": pool2["id"],
            "cidr": "198.18.101.0/24",
            "gateway_ip": "198.18.101.1",
            "role": "anycast",
        },
    ).json()["subnet"]
    return {
        "other_vip": other["vip_address"],
        "external": external_subnet["id"],
        "pool2": pool2_subnet["id"],
    }


world_template, db_url, world = world_fixtures(build_world)


# (id, load balancer fields, status, field named, words the message must hold)
HIJACKS: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("member-subnet", {"vip_subnet_id": MEMBER_V4.id}, 400, "vip_subnet_id", "member subnet"),
    ("member-network", {"vip_network_id": MEMBER_NET}, 400, "vip_network_id", "member subnet"),
    (
        "member-subnet-address",
        {"vip_subnet_id": MEMBER_V4.id, "vip_address": "198.18.3.150"},
        400,
        "vip_subnet_id",
        "role anycast",
    ),
    ("management-subnet", {"vip_subnet_id": MGMT_V4}, 400, "vip_subnet_id", "management"),
    (
        "frontend-subnet",
        {"vip_subnet_id": FRONTEND_V4.id, "vip_address": "198.18.1.77"},
        400,
        "vip_subnet_id",
        "frontend subnet",
    ),
    ("frontend-network", {"vip_network_id": FRONTEND_NET}, 400, "vip_network_id", "frontend"),
    ("external-subnet", {"vip_subnet_id": "{external}"}, 400, "vip_subnet_id", "external"),
    (
        "frontend-from-anycast",
        {"frontend_subnet_id": ANYCAST_V4.id},
        400,
        "frontend_subnet_id",
        "role frontend",
    ),
    (
        "frontend-from-member",
        {"frontend_subnet_id": MEMBER_V4.id},
        400,
        "frontend_subnet_id",
        "member subnet",
    ),
    ("member-address", {"vip_address": MEMBER_ADDRESS}, 409, "vip_address", "a member"),
    ("router-address", {"vip_address": ROUTER_ADDRESS}, 409, "vip_address", "BGP peer"),
    (
        "gateway-address",
        {"vip_subnet_id": "{pool2}", "vip_address": "198.18.101.1"},
        409,
        "vip_address",
        "gateway",
    ),
    ("other-lb-address", {"vip_address": "{other_vip}"}, 409, "vip_address", "in use"),
    ("empty-address", {"vip_address": ""}, 400, "vip_address", "vip_address"),
]


def _allocations(api: Api) -> list[tuple[str, str]]:
    with api.db.session() as s:
        return sorted(
            (a.subnet_id, a.ip_address) for a in s.scalars(select(models.NetIpAllocation))
        )


def _jobs(api: Api) -> int:
    with api.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(models.WorkerJob)) or 0)


@pytest.mark.parametrize("headers", [TENANT_A, ADMIN], ids=["tenant", "admin"])
@pytest.mark.parametrize(
    ("fields", "status", "field", "words"),
    [case[1:] for case in HIJACKS],
    ids=[case[0] for case in HIJACKS],
)
def test_a_vip_outside_the_anycast_pools_is_refused_and_changes_nothing(
    api: Api,
    world: dict[str, str],
    headers: dict[str, str],
    fields: dict[str, Any],
    status: int,
    field: str,
    words: str,
) -> None:
    body = {"vip_subnet_id": ANYCAST_V4.id, "topology": "ACTIVE_ACTIVE", "amphora_count": 2}
    for key, value in fields.items():
        body[key] = value.format(**world) if isinstance(value, str) else value
    if "vip_network_id" in fields:
        del body["vip_subnet_id"]
    before, allocations, jobs = api.snapshot(), _allocations(api), _jobs(api)

    response = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": body}, headers)

    assert response.status_code == status, response.text
    fault = response.json()
    assert fault["field"] == field and words in fault["faultstring"], fault
    assert "lax-or-strict" not in fault["faultstring"]
    assert "function-" not in fault["faultstring"]
    assert api.snapshot() == before
    assert _allocations(api) == allocations  # no address left reserved
    assert _jobs(api) == jobs  # nothing for a worker to build or announce


def test_an_anycast_vip_with_a_front_end_subnet_is_accepted(
    api: Api, world: dict[str, str]
) -> None:
    """The same request with a VIP in the pool goes through (the refusals above can fail)."""
    lb = api.create_lb(vip_address="198.18.100.61", topology="ACTIVE_ACTIVE", amphora_count=2)
    assert lb["frontend_subnet_id"] == FRONTEND_V4.id
    assert (ANYCAST_V4.id, "198.18.100.61") in _allocations(api)
    second = api.create_lb(vip_subnet_id=world["pool2"])
    assert second["vip_address"] == "198.18.101.100"  # from allocation_start_index
    v6 = api.create_lb(vip_subnet_id=ANYCAST_V6.id)
    assert v6["frontend_subnet_id"] == stable_id("frontend-net-v6")


# -- the admin API that defines networks -----------------------------------------------------


def test_the_operator_defines_networks_and_subnets_with_roles(api: Api) -> None:
    network = _post_network(api, {"name": "pool-b", "mtu": 9000})
    assert network.status_code == 201, network.text
    net = network.json()["network"]
    assert net["mtu"] == 9000 and net["subnets"] == []
    created = _post_subnet(
        api,
        {
            "name": "pool-b-v6",
            "network_id": net["id"],
            "cidr": "2001:db8:5::/64",
            "role": "anycast",
            "gateway_ip": None,
        },
    )
    assert created.status_code == 201, created.text
    subnet = created.json()["subnet"]
    assert subnet["role"] == "anycast" and subnet["gateway_ip"] is None
    assert subnet["ip_version"] == 6
    listed = api.get("/v2.0/subnets", params={"role": "anycast"}).json()["subnets"]
    assert subnet["id"] in {s["id"] for s in listed}
    assert all(s["role"] == "anycast" for s in listed)
    shown = api.get(f"/v2.0/networks/{net['id']}").json()["network"]
    assert shown["subnets"] == [subnet["id"]]
    default_gw = _post_subnet(
        api,
        {"name": "fe-b", "network_id": net["id"], "cidr": "198.18.50.0/24", "role": "frontend"},
    ).json()["subnet"]
    assert default_gw["gateway_ip"] == "198.18.50.1"  # Neutron's default: the first address

    lb = api.create_lb(vip_subnet_id=subnet["id"])
    assert lb["vip_address"] == "2001:db8:5::64"  # host index 100
    assert api.delete(f"/v2.0/subnets/{subnet['id']}").status_code == 409  # the VIP holds one
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 409

    assert api.delete(f"/v2.0/subnets/{default_gw['id']}").status_code == 204
    assert api.get(f"/v2.0/subnets/{default_gw['id']}").status_code == 404


# (id, path, body, headers, status, field)
ADMIN_REFUSALS: list[tuple[str, str, dict[str, Any], dict[str, str], int, str | None]] = [
    ("tenant-network", "/v2.0/networks", {"network": {"name": "x"}}, TENANT_A, 403, None),
    (
        "tenant-subnet",
        "/v2.0/subnets",
        {"subnet": {"name": "x", "network_id": "{net}", "cidr": "10.9.0.0/24"}},
        TENANT_A,
        403,
        None,
    ),
    (
        "duplicate-network",
        "/v2.0/networks",
        {"network": {"name": "anycast-net"}},
        ADMIN,
        409,
        "name",
    ),
    (
        "bad-role",
        "/v2.0/subnets",
        {"subnet": {"name": "x", "network_id": "{net}", "cidr": "10.9.0.0/24", "role": "vip"}},
        ADMIN,
        400,
        "role",
    ),
    (
        "bad-cidr",
        "/v2.0/subnets",
        {"subnet": {"name": "x", "network_id": "{net}", "cidr": "10.9.0.300/24"}},
        ADMIN,
        400,
        "cidr",
    ),
    (
        "overlap",
        "/v2.0/subnets",
        {"subnet": {"name": "x", "network_id": "{net}", "cidr": "198.18.100.128/25"}},
        ADMIN,
        409,
        "cidr",
    ),
    (
        "gateway-outside",
        "/v2.0/subnets",
        {
            "subnet": {
                "name": "x",
                "network_id": "{net}",
                "cidr": "10.9.0.0/24",
                "gateway_ip": "10.8.0.1",
            }
        },
        ADMIN,
        400,
        "gateway_ip",
    ),
    (
        "version-mismatch",
        "/v2.0/subnets",
        {"subnet": {"name": "x", "network_id": "{net}", "cidr": "10.9.0.0/24", "ip_version": 6}},
        ADMIN,
        400,
        "ip_version",
    ),
    (
        "unknown-network",
        "/v2.0/subnets",
        {"subnet": {"name": "x", "network_id": "nope", "cidr": "10.9.0.0/24"}},
        ADMIN,
        404,
        "network_id",
    ),
    (
        "unknown-field",
        "/v2.0/networks",
        {"network": {"name": "y", "colour": 1}},
        ADMIN,
        400,
        "colour",
    ),
]


def _fill(value: Any, network_id: str) -> Any:
    """The table's body with its {net} placeholder filled in."""
    if isinstance(value, dict):
        return {k: _fill(v, network_id) for k, v in value.items()}
    return network_id if value == "{net}" else value


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "field"),
    [c[1:] for c in ADMIN_REFUSALS],
    ids=[c[0] for c in ADMIN_REFUSALS],
)
def test_bad_network_definitions_are_refused_and_change_nothing(
    api: Api,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    net = _post_network(api, {"name": "scratch"}).json()["network"]
    payload = _fill(body, net["id"])
    before = (
        api.get("/v2.0/networks").json()["networks"],
        api.get("/v2.0/subnets").json()["subnets"],
    )
    response = api.post(path, payload, headers)
    assert response.status_code == status, response.text
    if field is not None:
        fault = response.json()
        assert fault["field"] == field and fault["faultstring"], fault
    after = (
        api.get("/v2.0/networks").json()["networks"],
        api.get("/v2.0/subnets").json()["subnets"],
    )
    assert after == before
