"""Route safety (issue 14) without the lab: the shared rule, the controller filling the config
drive's anycast prefixes from the network driver, and the agent's API refusing (403) a VIP it
may not announce before it changes anything."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from l3dist.amphora_agent.api import create_app
from l3dist.amphora_agent.service import AgentService
from l3dist.bgp import policy
from l3dist.compute.noop import NoopComputeDriver
from l3dist.contracts.agent_config import AgentConfig
from l3dist.network.catalog import Catalog
from l3dist.network.models import ROLE_ANYCAST, ROLE_FRONTEND, ROLE_MEMBER, Network, Subnet
from l3dist.network.noop import NoopNetworkDriver
from l3dist.network.roles import anycast_prefixes

POOLS = [ipaddress.ip_network("198.18.100.0/24"), ipaddress.ip_network("fd00:198:18:100::/64")]

REFUSED = [
    pytest.param("8.8.8.8", "not inside", id="foreign-v4"),
    pytest.param("0.0.0.0", "unspecified", id="unspecified-v4"),
    pytest.param("::", "unspecified", id="unspecified-v6"),
    pytest.param("127.0.0.1", "loopback", id="loopback"),
    pytest.param("224.0.0.5", "multicast", id="multicast"),
    pytest.param("169.254.1.1", "link-local", id="link-local-v4"),
    pytest.param("fe80::1", "link-local", id="link-local-v6"),
    pytest.param("198.18.3.10", "not inside", id="member-subnet"),
    pytest.param("2001:db8::1", "not inside", id="foreign-v6"),
    pytest.param("::ffff:198.18.100.10", "not inside", id="v4-mapped"),
]


@pytest.mark.parametrize(("vip", "reason"), REFUSED)
def test_refusal_names_vip_ip_and_why(vip: str, reason: str) -> None:
    message = policy.refusal(vip, POOLS)
    assert message is not None and message.startswith(f"vip_ip {ipaddress.ip_address(vip)} ")
    assert reason in message


def test_pool_addresses_are_allowed_and_no_pools_allow_nothing() -> None:
    assert policy.refusal("198.18.100.10", POOLS) is None
    assert policy.refusal("fd00:198:18:100::a", POOLS) is None
    assert "announces nothing" in str(policy.refusal("198.18.100.10", []))


@pytest.mark.parametrize(
    ("prefix", "ok"),
    [
        ("198.18.100.10/32", True),
        ("fd00:198:18:100::a/128", True),
        ("198.18.100.0/24", False),  # the pool itself: an aggregate
        ("198.18.100.8/29", False),
        ("0.0.0.0/0", False),
        ("::/0", False),
        ("8.8.8.8/32", False),
        ("not-a-prefix", False),
    ],
)
def test_exportable_is_host_routes_inside_the_pools(prefix: str, ok: bool) -> None:
    assert policy.exportable(prefix, POOLS) is ok


def subnet(name: str, cidr: str, role: str) -> Subnet:
    version = ipaddress.ip_network(cidr).version
    return Subnet(id=name, name=name, network_id=f"net-{name}", cidr=cidr, ip_version=version,
                  role=role)  # fmt: skip


def test_controller_takes_the_prefixes_from_the_network_drivers_anycast_subnets() -> None:
    subnets = [
        subnet("anycast-v6", "fd00:198:18:100::/64", ROLE_ANYCAST),
        subnet("anycast-v4", "198.18.100.0/24", ROLE_ANYCAST),
        subnet("anycast-b", "203.0.113.0/28", ROLE_ANYCAST),
        subnet("frontend-v4", "198.18.1.0/24", ROLE_FRONTEND),
        subnet("member-v4", "198.18.3.0/24", ROLE_MEMBER),
    ]
    networks = [Network(id=f"net-{s.id}", name=s.id, subnets=[s.id]) for s in subnets]
    driver = NoopNetworkDriver(Catalog(networks, subnets))
    assert [str(p) for p in anycast_prefixes(driver)] == [
        "198.18.100.0/24",
        "203.0.113.0/28",
        "fd00:198:18:100::/64",
    ]
    assert anycast_prefixes(NoopNetworkDriver()) == []


def test_noop_compute_driver_records_the_prefixes_it_was_given() -> None:
    compute = NoopComputeDriver()
    compute.build("a1", [], "bird", None, None, POOLS)  # type: ignore[arg-type]
    assert compute.anycast_prefixes == {"a1": POOLS}
    compute.delete("a1")
    assert compute.anycast_prefixes == {}


def agent_config(tmp_path: Path, prefixes: list[str]) -> dict[str, Any]:
    return {
        "amphora_id": "amp-1",
        "management": {"name": "mgmt0", "addresses": ["198.18.0.100/24", "fd00:198:18::64/64"]},
        "frontend": {
            "name": "fe0",
            "addresses": ["198.18.1.100/24", "fd00:198:18:1::64/64"],
            "gateways": ["198.18.1.1", "fd00:198:18:1::1"],
        },
        "haproxy_namespace": "l3d-unit-test-absent",
        "state_dir": str(tmp_path / "agent"),
        "tls": {"client_ca": str(tmp_path / "ca.pem"), "server_pem": str(tmp_path / "s.pem")},
        "anycast_prefixes": prefixes,
        "bgp": {
            "driver": "bird",
            "router_id": "198.18.0.100",
            "speakers": [
                {"id": f"s{v}", "ip_version": v, "local_as": 64512,
                 "peers": [{"id": f"tor-v{v}", "peer_ip": gw, "remote_as": 65000}]}
                for v, gw in ((4, "198.18.0.1"), (6, "fd00:198:18::1"))
            ],
        },
    }  # fmt: skip


def test_config_drive_prefixes_are_networks() -> None:
    base = agent_config(Path("/nonexistent"), [])
    assert AgentConfig.model_validate(base).anycast_prefixes == []
    with pytest.raises(ValidationError, match="anycast_prefixes"):
        AgentConfig.model_validate({**base, "anycast_prefixes": ["198.18.100.5/24"]})
    with pytest.raises(ValidationError, match="anycast_prefixes"):
        AgentConfig.model_validate({**base, "anycast_prefixes": ["nope"]})


class Agent:
    def __init__(self, tmp_path: Path, prefixes: list[str]) -> None:
        self.service = AgentService(AgentConfig.model_validate(agent_config(tmp_path, prefixes)))
        self.http = TestClient(create_app(self.service, manage_lifecycle=False))

    def unchanged(self) -> bool:
        """Nothing registered, nothing persisted, nothing handed to the speaker."""
        return (
            not self.service.registrations
            and not self.service.vip_routes
            and not self.service.state_path.exists()
            and self.service.speaker.routes == frozenset()
            and not self.service.speaker.workdir.exists()
        )


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    made = Agent(tmp_path, [str(p) for p in POOLS])
    yield made
    made.http.close()


def nexthop(vip: str) -> str:
    return "fd00:198:18:1::65" if ":" in vip else "198.18.1.101"


@pytest.mark.parametrize(("vip", "reason"), REFUSED)
@pytest.mark.parametrize("path", ["/1.0/distributor/amphorae", "/1.0/distributor/vips"])
def test_agent_refuses_a_vip_outside_its_pools_with_403(
    agent: Agent, path: str, vip: str, reason: str
) -> None:
    body = {"vip_ip": vip, "nexthop_ip": nexthop(vip)}
    if path.endswith("amphorae"):
        body["amphora_id"] = "amp-1"
    answer = agent.http.post(path, json=body)
    assert answer.status_code == 403, answer.text
    assert answer.json()["field"] == "vip_ip"
    assert reason in answer.json()["message"] and "vip_ip" in answer.json()["message"]
    assert agent.unchanged()


def test_agent_without_prefixes_announces_nothing(tmp_path: Path) -> None:
    empty = Agent(tmp_path, [])
    answer = empty.http.post(
        "/1.0/distributor/vips", json={"vip_ip": "198.18.100.10", "nexthop_ip": "198.18.1.101"}
    )
    assert answer.status_code == 403 and answer.json()["field"] == "vip_ip"
    assert "announces nothing" in answer.json()["message"]
    assert empty.unchanged()


def test_a_pool_vip_passes_the_route_safety_check(agent: Agent) -> None:
    """The 403 is the pools' doing: a pool VIP goes on to the next check (here the next hop)."""
    answer = agent.http.post(
        "/1.0/distributor/vips", json={"vip_ip": "198.18.100.10", "nexthop_ip": "198.18.9.9"}
    )
    assert (answer.status_code, answer.json()["field"]) == (400, "nexthop_ip"), answer.text


def test_persisted_registrations_outside_the_pools_are_dropped(tmp_path: Path) -> None:
    """State from before the limit (or written by hand) never reaches the speaker."""
    made = Agent(tmp_path, [str(p) for p in POOLS])
    made.service.state_dir.mkdir(parents=True)
    good = {"amphora_id": "amp-1", "vip_ip": "198.18.100.10", "nexthop_ip": "198.18.1.100"}
    bad = {"amphora_id": "amp-1", "vip_ip": "8.8.8.8", "nexthop_ip": "198.18.1.100"}
    made.service.state_path.write_text(
        json.dumps(
            {
                "registrations": [good, bad],
                "draining": [bad],
                "vip_routes": [{"vip_ip": "0.0.0.0", "nexthop_ip": "198.18.1.101"}],
            }
        )
    )
    made.service._load()
    assert [r.vip_ip for r in made.service.registrations] == ["198.18.100.10"]
    assert made.service.draining == set() and made.service.vip_routes == set()
