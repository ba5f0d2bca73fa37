"""Listeners, pools, members, health monitors, distributors, BGP resources, amphorae, and roles."""

from __future__ import annotations

import ipaddress
from typing import Any

from l3dist.api.context import hash_token
from l3dist.common.config import ApiConfig
from l3dist.controller.worker import Worker
from l3dist.db import models

from .conftest import ADMIN, FRONTEND_V4, MEMBER_V4, READER_A, TENANT_A, TENANT_B, Api, run_jobs


def lb_with_pool(api: Api) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
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
    return lb, listener, pool


def test_listener_pool_member_monitor_lifecycle(api: Api) -> None:
    lb, listener, pool = lb_with_pool(api)
    assert (
        api.get(f"/v2/lbaas/listeners/{listener['id']}", TENANT_A).json()["listener"][
            "default_pool_id"
        ]
        == pool["id"]
    )
    member = api.create(
        f"/v2/lbaas/pools/{pool['id']}/members",
        "member",
        address="198.18.3.10",
        protocol_port=8080,
        subnet_id=MEMBER_V4.id,
        weight=5,
    )
    assert member["weight"] == 5 and member["operating_status"] == "NO_MONITOR"
    hm = api.create(
        "/v2/lbaas/healthmonitors",
        "healthmonitor",
        pool_id=pool["id"],
        type="HTTP",
        delay=5,
        timeout=3,
        max_retries=2,
        url_path="/healthz",
    )
    assert hm["http_method"] == "GET" and hm["expected_codes"] == "200"

    # A change locks the load balancer until the worker is done (Octavia's rule).
    changed = api.put(
        f"/v2/lbaas/pools/{pool['id']}/members/{member['id']}", {"member": {"weight": 7}}, TENANT_A
    )
    assert changed.status_code == 200 and changed.json()["member"]["weight"] == 7
    lb_now = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert lb_now["provisioning_status"] == "PENDING_UPDATE"
    blocked = api.post(
        f"/v2/lbaas/pools/{pool['id']}/members",
        {"member": {"address": "198.18.3.11", "protocol_port": 8080}},
        TENANT_A,
    )
    assert blocked.status_code == 409
    api.settle()

    pool_view = api.get(f"/v2/lbaas/pools/{pool['id']}", TENANT_A).json()["pool"]
    assert pool_view["members"] == [{"id": member["id"]}]
    assert pool_view["healthmonitor_id"] == hm["id"]
    assert pool_view["listeners"] == [{"id": listener["id"]}]
    members = api.get(f"/v2/lbaas/pools/{pool['id']}/members?address=198.18.3.10", TENANT_A).json()[
        "members"
    ]
    assert [m["id"] for m in members] == [member["id"]]

    for path in (
        f"/v2/lbaas/healthmonitors/{hm['id']}",
        f"/v2/lbaas/pools/{pool['id']}/members/{member['id']}",
        f"/v2/lbaas/pools/{pool['id']}",
        f"/v2/lbaas/listeners/{listener['id']}",
    ):
        assert api.delete(path, TENANT_A).status_code == 204
        api.settle()
    # The worker settled each delete: the rows are gone, the load balancer ACTIVE again.
    with api.db.session() as s:
        assert s.get(models.Listener, listener["id"]) is None
        assert s.get(models.Pool, pool["id"]) is None
    lb_now = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert lb_now["provisioning_status"] == "ACTIVE"


def test_duplicates_conflict(api: Api) -> None:
    lb, listener, pool = lb_with_pool(api)
    same_port = api.post(
        "/v2/lbaas/listeners",
        {"listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 80}},
        TENANT_A,
    )
    assert same_port.status_code == 409 and same_port.json()["field"] == "protocol_port"
    second_default = api.post(
        "/v2/lbaas/pools",
        {
            "pool": {
                "listener_id": listener["id"],
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
        TENANT_A,
    )
    assert second_default.status_code == 409
    api.create(
        f"/v2/lbaas/pools/{pool['id']}/members", "member", address="198.18.3.10", protocol_port=80
    )
    again = api.post(
        f"/v2/lbaas/pools/{pool['id']}/members",
        {"member": {"address": "198.18.3.10", "protocol_port": 80}},
        TENANT_A,
    )
    assert again.status_code == 409 and again.json()["field"] == "address"
    api.create(
        "/v2/lbaas/healthmonitors",
        "healthmonitor",
        pool_id=pool["id"],
        type="TCP",
        delay=5,
        timeout=3,
        max_retries=2,
    )
    second_hm = api.post(
        "/v2/lbaas/healthmonitors",
        {
            "healthmonitor": {
                "pool_id": pool["id"],
                "type": "TCP",
                "delay": 5,
                "timeout": 3,
                "max_retries": 2,
            }
        },
        TENANT_A,
    )
    assert second_hm.status_code == 409


def test_a_pool_on_a_foreign_listener_is_404(api: Api) -> None:
    _, listener, _ = lb_with_pool(api)
    before = api.snapshot()
    response = api.post(
        "/v2/lbaas/pools",
        {
            "pool": {
                "listener_id": listener["id"],
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
        TENANT_B,
    )
    assert response.status_code == 404 and response.json()["field"] == "listener_id"
    assert api.snapshot() == before


def test_distributor_and_bgp_resources(api: Api, worker: Worker) -> None:
    peer = api.create(
        "/v2/lbaas/bgppeers",
        "bgp_peer",
        headers=ADMIN,
        name="tor-a",
        peer_ip="198.18.0.1",
        remote_as=65000,
        auth_type="md5",
        password="s3cret",
        ttl_hops=1,
        hold_time=3,
        keepalive_interval=1,
        bfd_enabled=True,
        bfd_transmit_interval_ms=50,
        bfd_receive_interval_ms=50,
    )
    assert "password" not in peer and peer["auth_type"] == "md5"
    assert (peer["bfd_enabled"], peer["bfd_transmit_interval_ms"]) == (True, 50)
    assert peer["bfd_detect_multiplier"] == 3  # the default
    changed = api.put(
        f"/v2/lbaas/bgppeers/{peer['id']}", {"bgp_peer": {"bfd_detect_multiplier": 5}}, ADMIN
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["bgp_peer"]["bfd_detect_multiplier"] == 5
    assert changed.json()["bgp_peer"]["bfd_enabled"] is True
    listed = api.get("/v2/lbaas/bgppeers?bfd_enabled=true", ADMIN).json()["bgp_peers"]
    assert [p["id"] for p in listed] == [peer["id"]]
    assert "s3cret" not in api.get(f"/v2/lbaas/bgppeers/{peer['id']}").text
    with api.db.session() as s:
        stored = s.get(models.BgpPeer, peer["id"])
        assert stored is not None and stored.password == "s3cret"
    peer6 = api.create(
        "/v2/lbaas/bgppeers",
        "bgp_peer",
        headers=ADMIN,
        name="tor-a-v6",
        peer_ip="fd00:198:18::1",
        remote_as=65000,
    )
    speaker = api.create(
        "/v2/lbaas/bgpspeakers",
        "bgp_speaker",
        headers=ADMIN,
        name="amp-v4",
        ip_version=4,
        local_as=4200000000,
    )
    wrong_family = api.put(
        f"/v2/lbaas/bgpspeakers/{speaker['id']}/add_bgp_peer", {"bgp_peer_id": peer6["id"]}
    )
    assert wrong_family.status_code == 400 and wrong_family.json()["field"] == "bgp_peer_id"
    added = api.put(
        f"/v2/lbaas/bgpspeakers/{speaker['id']}/add_bgp_peer", {"bgp_peer_id": peer["id"]}
    )
    assert added.json()["bgp_speaker"]["peers"] == [peer["id"]]
    in_use = api.delete(f"/v2/lbaas/bgppeers/{peer['id']}")
    assert in_use.status_code == 409 and speaker["id"] in in_use.json()["faultstring"]

    distributor = api.create(
        "/v2/lbaas/distributors",
        "distributor",
        headers=ADMIN,
        name="fabric",
        distributor_type="L3_BGP",
        config_data={"bgp_speaker_ids": [speaker["id"]], "router_macs": ["02:1D:00:00:01:01"]},
    )
    assert distributor["status"] == "PENDING_CREATE"
    # the fabric's router MACs for flow rescue, normalized
    assert distributor["config_data"]["router_macs"] == ["02:1d:00:00:01:01"]
    speaker_busy = api.delete(f"/v2/lbaas/bgpspeakers/{speaker['id']}")
    assert speaker_busy.status_code == 409
    run_jobs(worker)  # the worker checks it: ACTIVE, load balancers may use it
    shown = api.get(f"/v2/lbaas/distributors/{distributor['id']}").json()["distributor"]
    assert shown["status"] == "ACTIVE"
    lb = api.create_lb(topology="ACTIVE_ACTIVE", amphora_count=2, distributor_id=distributor["id"])
    status = api.get(f"/v2/lbaas/distributors/{distributor['id']}/status").json()
    assert [e["id"] for e in status["distributor"]["loadbalancers"]] == [lb["id"]]
    assert api.delete(f"/v2/lbaas/distributors/{distributor['id']}").status_code == 409

    removed = api.put(
        f"/v2/lbaas/bgpspeakers/{speaker['id']}/remove_bgp_peer", {"bgp_peer_id": peer["id"]}
    )
    assert removed.json()["bgp_speaker"]["peers"] == []
    assert api.delete(f"/v2/lbaas/bgppeers/{peer['id']}").status_code == 204


def test_roles(api: Api) -> None:
    lb = api.create_lb()
    assert api.get("/v2/lbaas/loadbalancers", READER_A).json()["loadbalancers"][0]["id"] == lb["id"]
    assert (
        api.put(
            f"/v2/lbaas/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "x"}}, READER_A
        ).status_code
        == 403
    )
    for path in (
        "/v2/lbaas/distributors",
        "/v2/lbaas/bgpspeakers",
        "/v2/lbaas/bgppeers",
        "/v2/octavia/amphorae",
    ):
        assert api.get(path, TENANT_A).status_code == 403
    assert api.get("/v2/lbaas/loadbalancers", {"X-Roles": ""}).status_code == 403
    other_project = api.post(
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {"vip_subnet_id": lb["vip_subnet_id"], "project_id": "project-b"}},
        TENANT_A,
    )
    assert other_project.status_code == 403


def test_amphorae_show_service_type_and_frontend(api: Api) -> None:
    distributor = api.active_distributor(api.worker)
    lb = api.create_lb(topology="ACTIVE_ACTIVE", amphora_count=2, distributor_id=distributor["id"])
    listed = api.get("/v2/octavia/amphorae?loadbalancer_id=" + lb["id"]).json()["amphorae"]
    # The worker built them (combined mode: each its own speaker), a front-end port each.
    assert [a["service_type"] for a in listed] == ["loadbalancer_distributor"] * 2, listed
    frontends = {ipaddress.ip_address(a["frontend_ip"]) for a in listed}
    assert len(frontends) == 2
    assert all(ip in ipaddress.ip_network(FRONTEND_V4.cidr) for ip in frontends), frontends
    assert api.put(f"/v2/octavia/amphorae/{listed[0]['id']}/failover", {}).status_code == 202
    assert api.put("/v2/octavia/amphorae/nope/failover", {}).status_code == 404


def test_token_mode(api: Api) -> None:
    api.client.app.state.l3dist.config = ApiConfig(auth_strategy="token")  # type: ignore[attr-defined]
    with api.db.session() as s:
        s.add(
            models.ApiToken(
                token_sha256=hash_token("good-token"), project_id="project-a", roles=["member"]
            )
        )
    assert api.client.get("/v2/lbaas/loadbalancers").status_code == 401
    assert (
        api.client.get(
            "/v2/lbaas/loadbalancers", headers={"Authorization": "Bearer bad"}
        ).status_code
        == 401
    )
    ok = api.client.get("/v2/lbaas/loadbalancers", headers={"X-Auth-Token": "good-token"})
    assert ok.status_code == 200
    # Headers that no-auth mode trusts are ignored in token mode.
    admin_claim = api.client.get(
        "/v2/lbaas/bgppeers", headers={"Authorization": "Bearer good-token", "X-Roles": "admin"}
    )
    assert admin_claim.status_code == 403
