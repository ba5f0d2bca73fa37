"""The official OpenStack clients from PyPI against a running ``l3dist api`` (no-auth mode with an
endpoint override): python-octaviaclient through ``openstack loadbalancer ...``, and
openstacksdk's load_balancer proxy."""

from __future__ import annotations

import openstack

from .conftest import Server


def test_openstack_loadbalancer_cli(server: Server) -> None:
    lb = server.openstack(
        "loadbalancer", "create", "--name", "web", "--vip-subnet-id", "anycast-net-v4"
    )
    assert lb["provisioning_status"] == "PENDING_CREATE"
    server.settle()
    listener = server.openstack(
        "loadbalancer",
        "listener",
        "create",
        "--name",
        "http",
        "--protocol",
        "HTTP",
        "--protocol-port",
        "80",
        "web",
    )
    server.settle()
    pool = server.openstack(
        "loadbalancer",
        "pool",
        "create",
        "--name",
        "pool1",
        "--listener",
        "http",
        "--protocol",
        "HTTP",
        "--lb-algorithm",
        "ROUND_ROBIN",
    )
    server.settle()
    member = server.openstack(
        "loadbalancer",
        "member",
        "create",
        "--address",
        "198.18.3.10",
        "--protocol-port",
        "8080",
        "--name",
        "m1",
        "pool1",
    )
    server.settle()
    server.openstack(
        "loadbalancer",
        "healthmonitor",
        "create",
        "--delay",
        "5",
        "--timeout",
        "3",
        "--max-retries",
        "3",
        "--type",
        "HTTP",
        "pool1",
    )
    server.settle()

    assert [x["name"] for x in server.openstack("loadbalancer", "list")] == ["web"]
    assert server.openstack("loadbalancer", "show", "web")["listeners"] == [{"id": listener["id"]}]
    assert [x["id"] for x in server.openstack("loadbalancer", "listener", "list")] == [
        listener["id"]
    ]
    assert [x["id"] for x in server.openstack("loadbalancer", "pool", "list")] == [pool["id"]]
    assert [x["id"] for x in server.openstack("loadbalancer", "member", "list", "pool1")] == [
        member["id"]
    ]
    # The worker built the load balancer's amphora (noop compute).
    amphorae = server.openstack("loadbalancer", "amphora", "list")
    assert [a["loadbalancer_id"] for a in amphorae] == [lb["id"]], amphorae
    server.openstack("loadbalancer", "delete", "--cascade", "web", output=False)
    assert server.openstack("loadbalancer", "show", "web")["provisioning_status"] == (
        "PENDING_DELETE"
    )


def test_openstacksdk_load_balancer_proxy(server: Server) -> None:
    conn = openstack.connection.Connection(auth_type="none", auth={"endpoint": server.url})
    lb = conn.load_balancer.create_load_balancer(
        name="sdk", vip_subnet_id=conn.network.find_subnet("anycast-net-v6").id
    )
    assert lb.vip_address.startswith("fd00:198:18:100::")
    server.settle()
    listener = conn.load_balancer.create_listener(
        name="tcp", protocol="TCP", protocol_port=443, load_balancer_id=lb.id
    )
    server.settle()
    assert conn.load_balancer.get_load_balancer(lb.id).provisioning_status == "ACTIVE"
    assert [x.id for x in conn.load_balancer.listeners()] == [listener.id]
    assert [x.name for x in conn.load_balancer.load_balancers()] == ["sdk"]
    conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
    assert conn.load_balancer.get_load_balancer(lb.id).provisioning_status == "PENDING_DELETE"
