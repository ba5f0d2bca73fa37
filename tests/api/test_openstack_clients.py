"""The official OpenStack clients from PyPI against a running ``l3dist api`` (no-auth mode with an
endpoint override): python-octaviaclient through ``openstack loadbalancer ...``, and
openstacksdk's load_balancer proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from sqlalchemy import update

from l3dist.common import constants as c
from l3dist.db import models
from l3dist.db.session import Database

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, url: str, db: Database) -> None:
        self.url = url
        self.db = db

    def settle(self) -> None:
        """The worker's part: PENDING_CREATE/UPDATE -> ACTIVE."""
        with self.db.session() as s:
            for model in (
                models.LoadBalancer,
                models.Listener,
                models.Pool,
                models.Member,
                models.HealthMonitor,
            ):
                s.execute(
                    update(model)
                    .where(model.provisioning_status.in_((c.PENDING_CREATE, c.PENDING_UPDATE)))
                    .values(provisioning_status=c.ACTIVE)
                )

    def openstack(self, *args: str, output: bool = True) -> Any:
        auth = ["--os-auth-type", "none", "--os-endpoint", self.url]
        result = subprocess.run(
            [str(BIN / "openstack"), *auth, *args, *(["-f", "json"] if output else [])],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "L3DIST_DATABASE_URL": db_url, "L3DIST_CONFIG": str(tmp_path / "x")}
    proc = subprocess.Popen(
        [str(BIN / "l3dist"), "api", "--port", str(port)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "l3dist api did not start"
            time.sleep(0.1)
        db = Database(db_url)
        yield Server(url, db)
        db.engine.dispose()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


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
    assert server.openstack("loadbalancer", "amphora", "list") == []
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
