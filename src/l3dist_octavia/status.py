"""Statuses back to Octavia: l3dist's ``/status`` tree as ``DriverLibrary``'s status dict.

Octavia keeps a provider's objects ``PENDING_*`` until the provider reports them, through
octavia-lib's ``DriverLibrary.update_loadbalancer_status`` (a socket of Octavia's driver
agent). This is the pusher a provider agent will run for each l3dist load balancer; the
agent's loop and its entry point (``octavia.driver_agent.provider_agents``) are not built yet.

Only what l3dist's tree holds is reported: a load balancer l3dist no longer has is
``DELETED``; a child l3dist deleted, or a pool no listener uses, is not reported by this.
"""

from __future__ import annotations

from typing import Any, Protocol

from l3dist_octavia.client import L3distClient, L3distError

STATUS_KEYS = ("provisioning_status", "operating_status")


class StatusSink(Protocol):
    """The part of ``octavia_lib.api.drivers.driver_lib.DriverLibrary`` the pusher uses."""

    def update_loadbalancer_status(self, status: dict[str, Any]) -> None: ...


def _entry(obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": obj["id"], **{key: obj[key] for key in STATUS_KEYS if key in obj}}


def status_dict(tree: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{"statuses": {"loadbalancer": ...}}`` (l3dist) as ``{"loadbalancers": [...],
    "listeners": [...], "pools": [...], "members": [...], "healthmonitors": [...]}``."""
    lb = tree["statuses"]["loadbalancer"]
    result: dict[str, list[dict[str, Any]]] = {
        "loadbalancers": [_entry(lb)],
        "listeners": [],
        "pools": [],
        "members": [],
        "healthmonitors": [],
    }
    seen_pools: set[str] = set()
    for listener in lb.get("listeners", []):
        result["listeners"].append(_entry(listener))
        for pool in listener.get("pools", []):
            if pool["id"] in seen_pools:
                continue
            seen_pools.add(pool["id"])
            result["pools"].append(_entry(pool))
            result["members"].extend(_entry(member) for member in pool.get("members", []))
            if pool.get("health_monitor"):
                result["healthmonitors"].append(_entry(pool["health_monitor"]))
    return result


def push_status(client: L3distClient, sink: StatusSink, loadbalancer_id: str) -> dict[str, Any]:
    """Read one load balancer's tree from l3dist and hand it to Octavia; what was sent."""
    try:
        tree = client.request("GET", f"/v2/lbaas/loadbalancers/{loadbalancer_id}/status")
    except L3distError as error:
        if error.status != 404:
            raise
        status: dict[str, Any] = {
            "loadbalancers": [{"id": loadbalancer_id, "provisioning_status": "DELETED"}]
        }
    else:
        status = status_dict(tree)
    sink.update_loadbalancer_status(status)
    return status
