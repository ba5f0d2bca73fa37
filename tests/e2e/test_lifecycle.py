"""A load balancer's life through the REST API only, on the lab backends with real daemons:
created with 3 amphorae, an HTTP listener and two members; traffic through the VIP crosses all
amphorae and both members; deleted without a trace."""

from __future__ import annotations

from typing import Any

from l3dist.bgp.base import host_prefix
from l3dist.lab import fabric, plumbing
from l3dist.lab.config import PREFIX
from l3dist.lab.traffic import run_clients
from tests.e2e.conftest import ANYCAST_V4, FRONTEND_V4, Controller, wait_until


def amphorae_of(ctl: Controller, lb_id: str) -> list[dict[str, Any]]:
    rows = ctl.call("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb_id}")["amphorae"]
    return [a for a in rows if a["status"] == "ALLOCATED"]


def test_create_serve_and_delete(controller: Controller, distributor: dict[str, Any]) -> None:
    ctl = controller
    lb = ctl.call(
        "POST",
        "/v2/lbaas/loadbalancers",
        {
            "loadbalancer": {
                "name": "web",
                "vip_subnet_id": ANYCAST_V4,
                "frontend_subnet_id": FRONTEND_V4,
                "topology": "ACTIVE_ACTIVE",
                "amphora_count": 3,
                "distributor_id": distributor["id"],
            }
        },
        expect=201,
    )["loadbalancer"]
    lb_path = f"/v2/lbaas/loadbalancers/{lb['id']}"
    ctl.wait_for(lb_path, "loadbalancer", "ACTIVE")
    vip = lb["vip_address"]
    amps = amphorae_of(ctl, lb["id"])
    assert len(amps) == 3

    listener = ctl.call(
        "POST",
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
        expect=201,
    )["listener"]
    ctl.wait_for(lb_path, "loadbalancer", "ACTIVE")
    pool = ctl.call(
        "POST",
        "/v2/lbaas/pools",
        {
            "pool": {
                "listener_id": listener["id"],
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
        expect=201,
    )["pool"]
    ctl.wait_for(lb_path, "loadbalancer", "ACTIVE")
    for m in ctl.members:
        ctl.call(
            "POST",
            f"/v2/lbaas/pools/{pool['id']}/members",
            {"member": {"address": m.ip4, "protocol_port": m.port}},
            expect=201,
        )
        ctl.wait_for(lb_path, "loadbalancer", "ACTIVE")

    frontend_ips = {a["frontend_ip"] for a in amphorae_of(ctl, lb["id"])}
    wait_until(lambda: set(fabric.fib_nexthops(host_prefix(vip))) == frontend_ips, 30)
    shown = ctl.call("GET", lb_path)["loadbalancer"]
    assert (shown["provisioning_status"], shown["operating_status"]) == ("ACTIVE", "ONLINE")

    result = run_clients(vip, 300)
    assert result["failures"] == 0, result
    assert set(result["per_amphora"]) == {a["id"] for a in amps}, result
    assert set(result["per_member"]) == {"m1", "m2"}, result

    ctl.call("DELETE", f"{lb_path}?cascade=true", expect=204)
    wait_until(lambda: ctl.http.get(lb_path, headers={"X-Roles": "admin"}).status_code == 404, 60)
    wait_until(lambda: fabric.fib_nexthops(host_prefix(vip)) == [], 30)
    namespaces = plumbing.list_namespaces(PREFIX)
    assert not any(f"l3d-amp-{a['id'].replace('-', '')[:8]}" in namespaces for a in amps)
