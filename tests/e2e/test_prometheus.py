"""Metrics scraped by a real Prometheus (Debian's): the lab's Prometheus scrapes the control
plane (API, worker, health manager, router view) and the amphorae's agents (mutual TLS), loads
the alerting rules from ``contrib/``, and its PromQL answers match the lab's truth: 3 next hops
per VIP at the router (as in its FIB), the agents' BGP sessions up; then one amphora frozen:
the router reports its session down, the failover is counted, the replacement is 3 next hops
again. Every expression of the Grafana dashboard evaluates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from l3dist.bgp.base import host_prefix
from l3dist_lab import fabric, site
from l3dist_lab.prometheus import Prometheus
from tests.e2e.conftest import (
    Controller,
    amphorae_of,
    controller_on,
    create_web_lb,
    lb_path,
    wait_for_ecmp,
    wait_until,
)

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "l3dist-dashboard.json"
# SQLite only: what is scraped does not depend on the database.
controller = controller_on("sqlite")


@pytest.fixture(scope="module")
def web_lb(controller: Controller, distributor: dict[str, Any]) -> dict[str, Any]:
    lb = create_web_lb(controller, distributor, 3)
    wait_for_ecmp(controller, lb, 3)
    return lb


@pytest.fixture(scope="module")
def prometheus(controller: Controller, web_lb: dict[str, Any]) -> Any:
    agents = [(str(h.host_id), h.mgmt_ip4) for h in controller.site.hosts]
    with Prometheus(controller, agents, interval=1.0) as server:
        wait_until(lambda: all(server.targets_up().values()), 30, "every target scraped")
        yield server


def settled(server: Prometheus, promql: str, wanted: float, timeout: float = 20) -> None:
    wait_until(lambda: server.value(promql) == wanted, timeout, f"{promql} == {wanted}")


def test_promql_answers_match_the_lab(
    controller: Controller, web_lb: dict[str, Any], prometheus: Prometheus
) -> None:
    ctl, lb, server = controller, web_lb, prometheus
    prefix = host_prefix(lb["vip_address"])
    assert len(fabric.fib_nexthops(prefix)) == 3
    # Next hops per VIP: what the router accepted (BMP) and what l3dist registered.
    settled(server, f'sum(l3dist_router_view_paths{{prefix="{prefix}", policy="post"}})', 3)
    settled(server, f'l3dist_router_view_intended_next_hops{{prefix="{prefix}"}}', 3)
    # The amphorae's own view: each has its IPv4 session to the ToR up and announces the VIP.
    tor = str(ctl.site.cfg.mgmt.gateway(4))
    amps = amphorae_of(ctl, lb["id"])
    hosts = {str(ctl.site.host_of(a).host_id) for a in amps}
    sessions = f'l3dist_agent_bgp_session_up{{peer="{tor}"}} == 1'

    def agents(promql: str) -> set[str]:
        return {r["metric"]["agent"] for r in server.query(promql)}

    wait_until(lambda: hosts <= agents(sessions), 15, "every amphora's session up, as it says")
    assert agents('l3dist_agent_routes_announced{family="ipv4"} > 0') == hosts
    # The control plane's own: the API's requests, the worker's flows, the heartbeats.
    wait_until(lambda: (server.value("sum(l3dist_api_request_duration_seconds_count)") or 0) > 0,
               10, "the API's requests scraped")  # fmt: skip
    done = 'sum(l3dist_worker_flow_duration_seconds_count{outcome="done"})'
    assert (server.value(done) or 0) >= 4  # the create, the listener, the pool, the members
    assert (server.value("l3dist_heartbeats_received_total") or 0) > 0
    # Nothing the rules watch is wrong now, and every rule evaluates.
    assert set(server.rules_healthy().values()) == {"ok"}
    assert server.value(
        f'max by (prefix) (l3dist_router_view_intended_next_hops{{prefix="{prefix}"}}) > on '
        f'(prefix) group_right sum by (router, prefix) (l3dist_router_view_paths{{policy="post"}})'
    ) is None  # fmt: skip


def test_a_frozen_amphora_shows_down_at_the_router_and_its_failover_is_counted(
    controller: Controller, web_lb: dict[str, Any], prometheus: Prometheus
) -> None:
    ctl, lb, server = controller, web_lb, prometheus
    prefix = host_prefix(lb["vip_address"])
    victim = amphorae_of(ctl, lb["id"])[0]
    frozen = ctl.site.host_of(victim)
    before = server.value("l3dist_failovers_started_total") or 0
    site.freeze(frozen)
    try:
        peer = f'l3dist_router_view_peer_up{{peer="{victim["lb_network_ip"]}"}}'
        settled(server, peer, 0, timeout=15)  # the router's BFD dropped it; BMP said so
        settled(server, f'up{{job="l3dist-agent-{frozen.host_id}"}}', 0, timeout=15)
        wait_until(
            lambda: (server.value("l3dist_failovers_started_total") or 0) >= before + 1,
            30, "the failover counted",
        )  # fmt: skip

        def replaced() -> bool:
            shown = ctl.call("GET", lb_path(lb))["loadbalancer"]
            ids = {a["id"] for a in amphorae_of(ctl, lb["id"])}
            return victim["id"] not in ids and shown["provisioning_status"] == "ACTIVE"

        wait_until(replaced, 90, "the frozen amphora replaced")
        wait_for_ecmp(ctl, lb, 3)
        settled(server, f'sum(l3dist_router_view_paths{{prefix="{prefix}", policy="post"}})', 3)
        assert victim["frontend_ip"] not in fabric.fib_nexthops(prefix)
    finally:
        site.thaw(frozen)


def test_every_dashboard_expression_evaluates(prometheus: Prometheus) -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    empty = []
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m")
            if not prometheus.query(expr):  # raises on an expression Prometheus refuses
                empty.append(panel["title"])
    # Series the lab has by now; flow rescue and the announce latency may have none yet.
    assert set(empty) <= {"Flow rescue packets", "Paths received but refused or unconfirmed",
                          "Register Amphora to router, p50 / p99"}, empty  # fmt: skip
