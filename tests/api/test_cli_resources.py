"""``l3dist <resource> create|list|show|set|delete`` against a running API."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from .conftest import ANYCAST_V4, BIN, Server


def l3dist(server: Server, *args: str, ok: bool = True) -> Any:
    env = {**os.environ, "L3DIST_API_URL": server.url}
    result = subprocess.run(
        [str(BIN / "l3dist"), *args], env=env, capture_output=True, text=True, timeout=60
    )
    if not ok:
        assert result.returncode == 1, result.stdout
        return result.stderr
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if "-f" in args else result.stdout


def test_resource_commands(server: Server) -> None:
    peer = l3dist(
        server,
        "bgp-peer",
        "create",
        "--name",
        "tor",
        "--peer-ip",
        "198.18.0.1",
        "--remote-as",
        "65000",
        "--auth-type",
        "md5",
        "--password",
        "pw",
        "-f",
        "json",
    )
    assert "password" not in peer
    l3dist(
        server,
        "bgp-speaker",
        "create",
        "--name",
        "amp-v4",
        "--ip-version",
        "4",
        "--local-as",
        "4200000001",
        "-f",
        "json",
    )
    speaker = l3dist(server, "bgp-speaker", "add-peer", "amp-v4", "tor", "-f", "json")
    assert speaker["peers"] == [peer["id"]]
    distributor = l3dist(
        server, "distributor", "create", "--name", "fabric", "--bgp-speaker", "amp-v4", "-f", "json"
    )
    assert distributor["status"] == "PENDING_CREATE"
    server.settle()  # the worker checks it: ACTIVE
    shown = l3dist(server, "distributor", "show", "fabric", "-f", "json")
    assert shown["status"] == "ACTIVE"
    # Dedicated mode: the worker builds its distributor amphorae (noop compute here).
    dedicated = l3dist(server, "distributor", "create", "--name", "dedicated", "--bgp-speaker",
                       "amp-v4", "--mode", "dedicated", "--distributor-amphorae", "3",
                       "-f", "json")  # fmt: skip
    assert dedicated["config_data"]["mode"] == "dedicated"
    server.settle()
    assert l3dist(server, "distributor", "show", "dedicated", "-f", "json")["status"] == "ACTIVE"
    amphorae = l3dist(server, "amphora", "list", "-f", "json")
    made = [a for a in amphorae if a.get("distributor_id") == dedicated["id"]]
    assert [a["service_type"] for a in made] == ["distributor"] * 3, amphorae
    lb = l3dist(
        server,
        "loadbalancer",
        "create",
        "--name",
        "web",
        "--vip-subnet-id",
        ANYCAST_V4.id,
        "--topology",
        "ACTIVE_ACTIVE",
        "--amphora-count",
        "3",
        "--distributor",
        "fabric",
        "-f",
        "json",
    )
    assert lb["distributor_id"] == distributor["id"] and lb["amphora_count"] == 3
    server.settle()
    listener = l3dist(
        server,
        "listener",
        "create",
        "web",
        "--protocol",
        "HTTP",
        "--protocol-port",
        "80",
        "--name",
        "http",
        "-f",
        "json",
    )
    server.settle()
    pool = l3dist(
        server,
        "pool",
        "create",
        "--listener",
        "http",
        "--protocol",
        "HTTP",
        "--lb-algorithm",
        "ROUND_ROBIN",
        "--name",
        "pool1",
        "-f",
        "json",
    )
    server.settle()
    member = l3dist(
        server,
        "member",
        "create",
        "pool1",
        "--address",
        "198.18.3.10",
        "--protocol-port",
        "8080",
        "--name",
        "m1",
        "-f",
        "json",
    )
    server.settle()
    assert [m["id"] for m in l3dist(server, "member", "list", "pool1", "-f", "json")] == [
        member["id"]
    ]
    assert l3dist(server, "listener", "show", "http", "-f", "json")["default_pool_id"] == pool["id"]
    table = l3dist(server, "loadbalancer", "list")
    assert lb["id"] in table and "ACTIVE_ACTIVE" in table
    scaled = l3dist(server, "loadbalancer", "set", "web", "--amphora-count", "4", "-f", "json")
    assert scaled["amphora_count"] == 4
    busy = l3dist(server, "loadbalancer", "set", "web", "--name", "x", ok=False)
    assert "immutable" in busy and "409" in busy
    in_use = l3dist(server, "bgp-peer", "delete", "tor", ok=False)
    assert "in use" in in_use
    missing = l3dist(server, "loadbalancer", "show", "nope", ok=False)
    assert "no loadbalancer with name or id nope" in missing
    server.settle()
    l3dist(server, "member", "delete", "pool1", "m1")
    server.settle()
    l3dist(server, "loadbalancer", "delete", "--cascade", "web")
    assert (
        l3dist(server, "loadbalancer", "show", lb["id"], "-f", "json")["provisioning_status"]
        == "PENDING_DELETE"
    )
    assert listener["id"]


def test_network_and_subnet_commands(server: Server) -> None:
    """The operator (the no-auth default: admin) defines a site's networks from the shell."""
    net = l3dist(server, "network", "create", "--name", "pool-x", "--mtu", "9000", "-f", "json")
    assert net["mtu"] == 9000
    sub = l3dist(server, "subnet", "create", "--name", "pool-x-v4", "--network", "pool-x",
                 "--cidr", "198.18.77.0/24", "--role", "anycast", "--gateway-ip", "none",
                 "-f", "json")  # fmt: skip
    assert (sub["role"], sub["gateway_ip"], sub["network_id"]) == ("anycast", None, net["id"])
    assert "pool-x-v4" in {s["name"] for s in l3dist(server, "subnet", "list", "-f", "json")}
    error = l3dist(server, "subnet", "create", "--name", "bad", "--network", "pool-x",
                   "--cidr", "198.18.77.128/25", ok=False)  # fmt: skip
    assert "overlaps" in error and "409" in error
    l3dist(server, "subnet", "delete", "pool-x-v4")
    l3dist(server, "network", "delete", "pool-x")
    assert "pool-x" not in {n["name"] for n in l3dist(server, "network", "list", "-f", "json")}
