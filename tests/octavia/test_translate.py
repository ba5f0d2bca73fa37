"""The translation of octavia-lib data models into l3dist bodies, the settings, the client's
errors and the entry point: no database, no app."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from octavia_lib.api.drivers import data_models as dm
from octavia_lib.api.drivers import exceptions as exc
from oslo_config import cfg

from l3dist_octavia import translate
from l3dist_octavia.client import L3distClient, L3distError
from l3dist_octavia.config import Settings, from_oslo_config, list_opts

ROOT = Path(__file__).resolve().parents[2]


def test_loadbalancer_body_keeps_the_id_and_vip_and_is_active_active() -> None:
    lb = dm.LoadBalancer(loadbalancer_id="lb-1", project_id="p", name="n", admin_state_up=True,
                         vip_subnet_id="s", vip_address="203.0.113.5", vip_port_id="port",
                         vip_network_id=None, description=dm.Unset, additional_vips=[],
                         vip_sg_ids=[], availability_zone={})  # fmt: skip
    body = translate.loadbalancer_body(lb, translate.Topology(3, "d-1"))
    assert body == {
        "id": "lb-1", "project_id": "p", "name": "n", "admin_state_up": True,
        "vip_subnet_id": "s", "vip_address": "203.0.113.5", "vip_port_id": "port",
        "topology": "ACTIVE_ACTIVE",
        "amphora_count": 3, "distributor_id": "d-1", "provider": "l3dist",
    }  # fmt: skip
    assert "distributor_id" not in translate.loadbalancer_body(lb, translate.Topology(1, None))


@pytest.mark.parametrize(
    ("fields", "option"),
    [
        ({"additional_vips": [{"subnet_id": "x"}]}, "additional_vips"),
        ({"vip_sg_ids": ["sg"]}, "vip_sg_ids"),
        ({"availability_zone": {"compute_zone": "a"}}, "availability_zone"),
        # In a fully populated create: what a listener of it carries and l3dist lacks.
        (
            {
                "listeners": [
                    dm.Listener(
                        listener_id="l-1",
                        protocol="HTTP",
                        protocol_port=80,
                        l7policies=[dm.L7Policy(l7policy_id="p-1")],
                    )
                ]
            },
            "l7policies",
        ),
    ],
)
def test_loadbalancer_options_l3dist_lacks(fields: dict[str, Any], option: str) -> None:
    lb = dm.LoadBalancer(loadbalancer_id="lb-1", **fields)
    with pytest.raises(exc.UnsupportedOptionError) as refused:
        translate.loadbalancer_body(lb, translate.Topology(2, None))
    assert option in refused.value.user_fault_string


def test_updates_carry_only_what_octavia_changed() -> None:
    assert translate.loadbalancer_update_body(dm.LoadBalancer(name="x", description=None)) == {
        "name": "x"
    }
    assert translate.listener_update_body(dm.Listener(timeout_client_data=5)) == {
        "timeout_client_data": 5
    }
    assert translate.pool_update_body(dm.Pool(admin_state_up=False)) == {"admin_state_up": False}
    assert translate.member_update_body(dm.Member(weight=0, backup=True)) == {
        "weight": 0, "backup": True,
    }  # fmt: skip
    assert translate.health_monitor_update_body(dm.HealthMonitor(timeout=2)) == {"timeout": 2}


def test_child_bodies() -> None:
    listener = dm.Listener(listener_id="l", loadbalancer_id="lb", protocol="TCP",
                           protocol_port=443, connection_limit=-1, l7policies=[],
                           sni_container_refs=[], client_authentication="NONE",
                           hsts_include_subdomains=False)  # fmt: skip
    assert translate.listener_body(listener) == {
        "id": "l", "loadbalancer_id": "lb", "protocol": "TCP", "protocol_port": 443,
        "connection_limit": -1,
    }  # fmt: skip
    pool = dm.Pool(pool_id="p", loadbalancer_id="lb", listener_id=None, protocol="PROXY",
                   lb_algorithm="ROUND_ROBIN", tls_enabled=False, members=[],
                   session_persistence={"type": "APP_COOKIE", "cookie_name": "c",
                                        "persistence_timeout": None})  # fmt: skip
    assert translate.pool_body(pool) == {
        "id": "p", "loadbalancer_id": "lb", "protocol": "PROXY", "lb_algorithm": "ROUND_ROBIN",
        "session_persistence": {"type": "APP_COOKIE", "cookie_name": "c"},
    }  # fmt: skip
    member = dm.Member(member_id="m", pool_id="p", address="192.0.2.1", protocol_port=80,
                       subnet_id="s", vnic_type="normal", monitor_port=None)  # fmt: skip
    assert translate.member_body(member) == {
        "id": "m", "address": "192.0.2.1", "protocol_port": 80, "subnet_id": "s",
    }  # fmt: skip
    hm = dm.HealthMonitor(healthmonitor_id="h", pool_id="p", type="PING", delay=1, timeout=1,
                          max_retries=1)  # fmt: skip
    assert translate.health_monitor_body(hm) == {
        "id": "h", "pool_id": "p", "type": "PING", "delay": 1, "timeout": 1, "max_retries": 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("call", "option"),
    [
        (lambda: translate.listener_body(dm.Listener(protocol="UDP")), "protocol UDP"),
        (
            lambda: translate.listener_body(dm.Listener(protocol="TERMINATED_HTTPS")),
            "protocol TERMINATED_HTTPS",
        ),
        (
            lambda: translate.listener_body(dm.Listener(default_tls_container_ref="ref")),
            "default_tls_container_ref",
        ),
        (lambda: translate.listener_body(dm.Listener(l7policies=[{}])), "l7policies"),
        (
            lambda: translate.listener_update_body(dm.Listener(client_authentication="MANDATORY")),
            "client_authentication",
        ),
        (lambda: translate.pool_body(dm.Pool(protocol="SCTP")), "protocol SCTP"),
        (
            lambda: translate.pool_body(dm.Pool(lb_algorithm="SOURCE_IP_PORT")),
            "lb_algorithm SOURCE_IP_PORT",
        ),
        (lambda: translate.pool_body(dm.Pool(tls_enabled=True)), "tls_enabled"),
        (lambda: translate.pool_update_body(dm.Pool(ca_tls_container_ref="r")), "ca_tls"),
        (lambda: translate.member_body(dm.Member(vnic_type="direct")), "vnic_type direct"),
        (
            lambda: translate.health_monitor_body(dm.HealthMonitor(type="UDP-CONNECT")),
            "type UDP-CONNECT",
        ),
    ],
)
def test_options_l3dist_lacks_are_refused_by_name(call: Any, option: str) -> None:
    with pytest.raises(exc.UnsupportedOptionError) as refused:
        call()
    assert option in refused.value.user_fault_string


def test_settings_from_octavia_conf(tmp_path: Path) -> None:
    conf_file = tmp_path / "octavia.conf"
    conf_file.write_text(
        "[l3dist]\napi_url = http://l3dist:9876\nauth_token = secret\n"
        "default_distributor = fabric\ndefault_amphora_count = 3\n"
    )
    conf = cfg.ConfigOpts()
    conf(["--config-file", str(conf_file)], project="octavia")
    settings = from_oslo_config(conf)
    assert settings == Settings(api_url="http://l3dist:9876", auth_token="secret",
                                default_distributor="fabric", default_amphora_count=3)  # fmt: skip
    assert from_oslo_config(conf) == settings  # registered twice: the same
    assert [group for group, _ in list_opts()] == ["l3dist"]


def test_the_client_sends_who_it_is_and_raises_l3dists_message() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        fault = {"faultcode": "Client", "faultstring": "vip_address x is taken", "field": "vip"}
        return httpx.Response(409, json=fault)

    noauth = L3distClient(Settings(project_id="svc", roles=("admin", "service")),
                          httpx.MockTransport(answer))  # fmt: skip
    with pytest.raises(L3distError) as refused:
        noauth.create("/v2/lbaas/loadbalancers", "loadbalancer", {})
    assert (refused.value.status, refused.value.message, refused.value.field) == (
        409, "vip_address x is taken", "vip",
    )  # fmt: skip
    assert seen[0].headers["x-project-id"] == "svc"
    assert seen[0].headers["x-roles"] == "admin,service"
    token = L3distClient(Settings(auth_token="t"), httpx.MockTransport(answer))
    with pytest.raises(L3distError):
        token.show("/v2/lbaas/loadbalancers/x", "loadbalancer")
    assert seen[1].headers["authorization"] == "Bearer t"
    assert "x-roles" not in seen[1].headers

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(L3distError, match="unreachable") as unreachable:
        L3distClient(Settings(), httpx.MockTransport(down)).list("/v2/lbaas/pools", "pools")
    assert unreachable.value.status == 0


def test_the_provider_distribution_names_the_driver_and_agent_and_needs_little() -> None:
    """octavia-provider/ is the l3dist-octavia distribution Octavia's environment installs:
    its entry points load, and it depends on octavia-lib, httpx and oslo.config only."""
    project = tomllib.loads((ROOT / "octavia-provider" / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["octavia.api.drivers"]["l3dist"]
    module, _, name = target.partition(":")
    driver = getattr(importlib.import_module(module), name)
    assert driver.name == "l3dist"
    agent = project["entry-points"]["octavia.driver_agent.provider_agents"]["l3dist"]
    module, _, name = agent.partition(":")
    assert callable(getattr(importlib.import_module(module), name))
    needs = {dep.split(">")[0].split("=")[0] for dep in project["dependencies"]}
    assert needs == {"octavia-lib", "httpx", "oslo.config"}
    # and l3dist's own distribution does not claim the provider's entry points
    l3dist = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "octavia.api.drivers" not in l3dist["entry-points"]
