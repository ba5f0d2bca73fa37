"""The amphora driver family: loaded by name, and the noop driver answers as an agent would."""

from __future__ import annotations

import ssl

import pytest

from l3dist.amphora_client import AgentClientError
from l3dist.amphora_client.driver import RestAmphoraDriver
from l3dist.amphora_client.noop import NoopAmphoraDriver
from l3dist.common import plugins
from l3dist.common.config import Config


def test_the_configuration_names_the_rest_driver_by_default() -> None:
    config = Config.model_validate({})
    assert config.controller.amphora_driver == "rest"
    assert plugins.load(plugins.AMPHORA, "rest", "amphora driver") is RestAmphoraDriver
    assert plugins.load(plugins.AMPHORA, "noop", "amphora driver") is NoopAmphoraDriver
    with pytest.raises(plugins.DriverNotFound, match="installed: noop, rest"):
        plugins.load(plugins.AMPHORA, "ssh", "amphora driver")


def test_the_rest_driver_asks_for_the_tls_context_per_client() -> None:
    made: list[ssl.SSLContext] = []

    def context() -> ssl.SSLContext:
        made.append(ssl.create_default_context())
        return made[-1]

    driver = RestAmphoraDriver(context)
    with driver.client("amp-1", "192.0.2.10", 9443, 1.0) as client:
        assert str(client.http.base_url) == "https://192.0.2.10:9443"
    assert len(made) == 1


def test_the_noop_agent_keeps_what_it_was_told() -> None:
    driver = NoopAmphoraDriver()
    with driver.client("amp-1", "127.0.0.1", 9443, 1.0) as client:
        client.plug_vip("203.0.113.10")
        client.register_amphora("amp-1", "203.0.113.10", "198.51.100.5")
        client.register_amphora("amp-1", "203.0.113.11", "198.51.100.5", peer_id="tor-a")
        client.put_haproxy("lb-1", "global\n")
        assert client.get_haproxy("lb-1") == "global\n"
        rows = client.list_amphorae(vip_ip="203.0.113.10")
        assert [(r["vip_ip"], r["nexthop_ip"]) for r in rows] == [("203.0.113.10", "198.51.100.5")]
        client.unregister_amphora("amp-1", "203.0.113.10", "198.51.100.5")
        assert [r["vip_ip"] for r in client.list_amphorae()] == ["203.0.113.11"]
        peers = client.bgp_status()["peers"]
        assert [(p["peer_id"], p["established"]) for p in peers] == [("noop", True)]
        with pytest.raises(AgentClientError) as refused:
            client.get_haproxy("lb-2")
        assert refused.value.status == 404
    agent = driver.agents.get("amp-1")
    assert agent.vips == {"203.0.113.10"}
    assert ("POST", "/1.0/plug/vip/203.0.113.10") in agent.calls
    # Another amphora's agent knows nothing of it.
    assert driver.agents.get("amp-2").registrations == {}


def test_the_noop_agent_reports_the_peers_it_was_given_established() -> None:
    driver = NoopAmphoraDriver()
    with driver.client("amp-1", "127.0.0.1", 9443, 1.0) as client:
        client._call("PUT", "/1.0/bgp", json={"speakers": [{"peers": [
            {"id": "tor-a", "peer_ip": "198.18.0.1", "remote_as": 65000}]}]})  # fmt: skip
        peers = client.bgp_status()["peers"]
    assert [(p["peer_id"], p["state"]) for p in peers] == [("tor-a", "Established")]
