"""``l3dist distributor vip create|list|show|delete [--wait]`` against a running API, with the
real worker running beside it (so ``--wait`` sees the route ACTIVE, then gone)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from l3dist.controller.worker import Worker

from .conftest import Server
from .test_cli_resources import l3dist


@pytest.fixture
def running_worker(server: Server) -> Iterator[Worker]:
    worker = server.worker
    thread = threading.Thread(target=worker.run_forever, name="worker", daemon=True)
    thread.start()
    yield worker
    worker.stop()
    thread.join(timeout=30)


def test_vip_route_commands(server: Server, running_worker: Worker) -> None:
    l3dist(server, "bgp-peer", "create", "--name", "tor", "--peer-ip", "198.18.0.1",
           "--remote-as", "65000", "-f", "json")  # fmt: skip
    l3dist(server, "bgp-speaker", "create", "--name", "amp-v4", "--ip-version", "4",
           "--local-as", "65001", "-f", "json")  # fmt: skip
    l3dist(server, "bgp-speaker", "add-peer", "amp-v4", "tor", "-f", "json")
    l3dist(server, "distributor", "create", "--name", "fabric", "--bgp-speaker", "amp-v4",
           "--wait", "-f", "json")  # fmt: skip

    route = l3dist(server, "distributor", "vip", "create", "fabric", "--name", "udp",
                   "--vip-ip", "198.18.100.200", "--nexthop-ip", "198.18.1.200", "--peer", "tor",
                   "--wait", "-f", "json")  # fmt: skip
    assert route["provisioning_status"] == "ACTIVE", route
    assert route["vip_ip"] == "198.18.100.200" and route["peer_id"] is not None
    listed = l3dist(server, "distributor", "vip", "list", "fabric", "-f", "json")
    assert [r["id"] for r in listed] == [route["id"]]
    shown = l3dist(server, "distributor", "vip", "show", "fabric", "udp", "-f", "json")
    assert shown["id"] == route["id"] and shown["nexthop_ip"] == "198.18.1.200"
    table = l3dist(server, "distributor", "vip", "list", "fabric")
    assert "198.18.100.200" in table

    refused = l3dist(server, "distributor", "vip", "create", "fabric", "--vip-ip",
                     "198.18.3.5", "--nexthop-ip", "198.18.1.200", ok=False)  # fmt: skip
    assert "anycast" in refused and "HTTP 400" in refused
    in_use = l3dist(server, "distributor", "delete", "fabric", ok=False)
    assert "delete VIP route" in in_use

    l3dist(server, "distributor", "vip", "delete", "fabric", "udp", "--wait")
    assert l3dist(server, "distributor", "vip", "list", "fabric", "-f", "json") == []
