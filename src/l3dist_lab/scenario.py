"""Load balancer scenarios on the lab through the REST API: the fabric's distributor, a web
load balancer with the lab's member servers, waiting for the ToR's ECMP route. Shared by the
end-to-end tests and the lifecycle benchmark (the demo does the same with the CLI)."""

from __future__ import annotations

import time
from typing import Any

from l3dist.bgp.base import host_prefix
from l3dist_lab import fabric
from l3dist_lab.config import BRIDGE_MACS, LabConfig
from l3dist_lab.controlplane import ADMIN, ControlPlane, ControlPlaneError
from l3dist_lab.member import LabMember


def lab_distributor(plane: ControlPlane, cfg: LabConfig | None = None) -> dict[str, Any]:
    """The lab's BGP peer profiles (the ToR, BFD as its bfdd profile), one speaker per IP
    version, an L3_BGP distributor."""
    cfg = cfg or LabConfig()
    speakers = []
    for version in (4, 6):
        peer = plane.call("POST", "/v2/lbaas/bgppeers", {"bgp_peer": {
            "name": f"tor-v{version}", "peer_ip": cfg.mgmt.gateway(version),
            "remote_as": cfg.tor_asn, "ttl_hops": 1, "hold_time": cfg.hold_time,
            "keepalive_interval": cfg.keepalive, "bfd_enabled": True,
            "bfd_transmit_interval_ms": cfg.bfd_interval_ms,
            "bfd_receive_interval_ms": cfg.bfd_interval_ms,
            "bfd_detect_multiplier": cfg.bfd_multiplier}}, expect=201)["bgp_peer"]  # fmt: skip
        speaker = plane.call("POST", "/v2/lbaas/bgpspeakers", {"bgp_speaker": {
            "name": f"amphora-v{version}", "ip_version": version,
            "local_as": cfg.amphora_asn}}, expect=201)["bgp_speaker"]  # fmt: skip
        plane.call("PUT", f"/v2/lbaas/bgpspeakers/{speaker['id']}/add_bgp_peer",
                   {"bgp_peer_id": peer["id"]})  # fmt: skip
        speakers.append(speaker["id"])
    # the ToR's front-end MAC: what an operator lists for flow rescue (the amphorae learn it too)
    config = {"bgp_speaker_ids": speakers, "router_macs": [BRIDGE_MACS[cfg.frontend.bridge]]}
    body = {"distributor": {"name": "fabric", "distributor_type": "L3_BGP",
                            "config_data": config}}  # fmt: skip
    made = plane.call("POST", "/v2/lbaas/distributors", body, expect=201)["distributor"]
    return wait_for_distributor(plane, made["id"])


def wait_for_distributor(
    plane: ControlPlane, distributor_id: str, timeout: float = 30
) -> dict[str, Any]:
    """Until the worker made the distributor ACTIVE (ERROR fails at once, with the reason)."""
    path = f"/v2/lbaas/distributors/{distributor_id}"
    deadline = time.monotonic() + timeout
    while True:
        shown = plane.call("GET", path)["distributor"]
        if shown["status"] == "ACTIVE":
            return dict(shown)
        if shown["status"] == "ERROR" or time.monotonic() > deadline:
            reason = plane.call("GET", f"{path}/status")["distributor"]["status_reason"]
            raise ControlPlaneError(f"distributor {distributor_id} is {shown['status']}: {reason}")
        time.sleep(0.1)


def define_networks(plane: ControlPlane, cfg: LabConfig | None = None) -> dict[str, str]:
    """The lab's networks defined through the admin API, as an operator defines a site's own
    (the static network driver): the subnet ids by name (``anycast-net-v4``)."""
    ids: dict[str, str] = {}
    for net in (cfg or LabConfig()).networks():
        definition = {"name": net.name, "router:external": net.external}
        network = plane.call("POST", "/v2.0/networks", {"network": definition}, expect=201)[
            "network"
        ]
        for version, cidr in net.subnets():
            body = {
                "name": f"{net.name}-v{version}",
                "network_id": network["id"],
                "cidr": str(cidr),
                "role": net.role,
                "gateway_ip": str(cidr[1]) if net.routed else None,  # the router's address
            }
            subnet = plane.call("POST", "/v2.0/subnets", {"subnet": body}, expect=201)["subnet"]
            ids[body["name"]] = subnet["id"]
    return ids


def lb_path(lb: dict[str, Any]) -> str:
    return f"/v2/lbaas/loadbalancers/{lb['id']}"


def amphorae_of(plane: ControlPlane, lb_id: str) -> list[dict[str, Any]]:
    rows = plane.call("GET", f"/v2/octavia/amphorae?loadbalancer_id={lb_id}")["amphorae"]
    return [a for a in rows if a["status"] == "ALLOCATED"]


def create_lb(
    plane: ControlPlane,
    distributor_id: str,
    count: int,
    ip_version: int = 4,
    *,
    subnets: dict[str, str],
) -> dict[str, Any]:
    """An ACTIVE_ACTIVE load balancer with `count` amphorae, waited for (ACTIVE); its VIP and
    front end (the next hops) of the IP version. subnets: the site's ids by name
    (``define_networks``)."""
    vip_subnet = subnets[f"anycast-net-v{ip_version}"]
    frontend_subnet = subnets[f"frontend-net-v{ip_version}"]
    lb = plane.call("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": "web", "vip_subnet_id": vip_subnet, "frontend_subnet_id": frontend_subnet,
        "topology": "ACTIVE_ACTIVE", "amphora_count": count,
        "distributor_id": distributor_id}}, expect=201)["loadbalancer"]  # fmt: skip
    plane.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    return dict(lb)


def add_web_service(
    plane: ControlPlane, lb: dict[str, Any], members: list[LabMember]
) -> dict[str, Any]:
    """An HTTP listener on port 80 with a round-robin pool of the members, each step waited for."""
    listener = plane.call("POST", "/v2/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 80}},
        expect=201)["listener"]  # fmt: skip
    plane.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    pool = plane.call("POST", "/v2/lbaas/pools", {"pool": {
        "listener_id": listener["id"], "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}},
        expect=201)["pool"]  # fmt: skip
    plane.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    for m in members:
        plane.call("POST", f"/v2/lbaas/pools/{pool['id']}/members",
                   {"member": {"address": m.ip4, "protocol_port": m.port}}, expect=201)  # fmt: skip
        plane.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    return {**lb, "listener": listener, "pool": pool}


def create_populated_lb(
    plane: ControlPlane,
    distributor_id: str,
    count: int,
    members: list[LabMember],
    ip_version: int = 4,
    *,
    subnets: dict[str, str],
) -> dict[str, Any]:
    """What ``create_lb`` and ``add_web_service`` make, in one fully populated create (one
    request, one flow), waited for (ACTIVE); with its ``listener`` and ``pool``."""
    member_address = "ip4" if ip_version == 4 else "ip6"
    lb = plane.call("POST", "/v2/lbaas/loadbalancers", {"loadbalancer": {
        "name": "web", "vip_subnet_id": subnets[f"anycast-net-v{ip_version}"],
        "frontend_subnet_id": subnets[f"frontend-net-v{ip_version}"],
        "topology": "ACTIVE_ACTIVE", "amphora_count": count, "distributor_id": distributor_id,
        "listeners": [{"protocol": "HTTP", "protocol_port": 80, "default_pool": {
            "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": getattr(m, member_address), "protocol_port": m.port}
                        for m in members]}}]}}, expect=201)["loadbalancer"]  # fmt: skip
    plane.wait_for(lb_path(lb), "loadbalancer", "ACTIVE")
    listener = lb["listeners"][0]
    pool = next(p for p in lb["pools"] if p["id"] == listener["default_pool_id"])
    return {**lb, "listener": listener, "pool": pool}


def wait_for_ecmp(
    plane: ControlPlane, lb: dict[str, Any], count: int, timeout: float = 30
) -> set[str]:
    """Until the ToR's FIB route for the VIP has exactly the front-end IPs of the load
    balancer's `count` amphorae as next hops; returns them."""
    prefix = host_prefix(lb["vip_address"])
    deadline = time.monotonic() + timeout
    while True:
        ips = {a["frontend_ip"] for a in amphorae_of(plane, lb["id"])}
        if len(ips) == count and set(fabric.fib_nexthops(prefix)) == ips:
            return ips
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"no {count}-way route for {prefix} in {timeout} s")
        time.sleep(0.05)


def delete_lb(plane: ControlPlane, lb: dict[str, Any], timeout: float = 60) -> None:
    """Cascade delete, waited for until the load balancer is gone."""
    plane.call("DELETE", f"{lb_path(lb)}?cascade=true", expect=204)
    deadline = time.monotonic() + timeout
    while plane.http.get(lb_path(lb), headers=ADMIN).status_code != 404:
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"load balancer {lb['id']} not gone in {timeout} s")
        time.sleep(0.1)
