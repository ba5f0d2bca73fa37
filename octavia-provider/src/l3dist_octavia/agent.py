"""The provider agent: l3dist's statuses pushed to Octavia, about twice a second.

Octavia keeps a provider's objects ``PENDING_*`` until the provider reports them through
octavia-lib's ``DriverLibrary`` (sockets of Octavia's driver agent, which writes Octavia's
database). Octavia's driver agent starts this loop in its own process (entry point group
``octavia.driver_agent.provider_agents``, name ``l3dist``; enable it with
``[driver_agent] enabled_provider_agents = l3dist``) and passes an event that ends it.

Each tick is one request to l3dist (``GET /v2/lbaas/statuses?provider=l3dist``: every load
balancer's objects, flat, with when each last changed). Only load balancers with a change
since the last push are sent, so an idle cloud costs one small request per tick and no write
in Octavia. Invariants:

- A load balancer with any change is pushed whole (every object's statuses): Octavia moves
  objects to ``PENDING_*`` on its own at each request, and a change l3dist finished between
  two ticks (PENDING_UPDATE, then ACTIVE again) must still take them out of it. A change is
  a status or an ``updated_at`` that differs.

- The first tick after a start pushes everything: Octavia converges after an agent restart.
  It also asks for the load balancers l3dist deleted (``include_deleted``) and pushes
  ``DELETED`` for those Octavia still holds: one deleted while the agent was down.
- An object that was in the previous answer and is not in this one was deleted in l3dist:
  it is pushed ``DELETED`` (a whole load balancer with it). A child deleted while the agent
  was down is found by asking Octavia which children it has (``get_loadbalancer``) whenever a
  load balancer's statuses change.
- A failed push is tried again at the next tick (the snapshot is kept only once sent).
- Listener statistics (the same answer carries them) go to Octavia's ``/stats`` through
  ``update_listener_statistics``: absolute totals, only the listeners whose figures changed,
  in one call per tick.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from l3dist_octavia.client import L3distClient, L3distError

LOG = logging.getLogger(__name__)

KINDS = ("listeners", "pools", "members", "healthmonitors")
PROVIDER = "l3dist"
# kind -> id -> (provisioning, operating, updated_at)
Snapshot = dict[str, dict[str, tuple[str, str, str | None]]]


class OctaviaSide(Protocol):
    """What the agent uses of ``octavia_lib.api.drivers.driver_lib.DriverLibrary``."""

    def update_loadbalancer_status(self, status: dict[str, Any]) -> None: ...

    def get_loadbalancer(self, loadbalancer_id: str) -> Any: ...

    def update_listener_statistics(self, statistics: dict[str, Any]) -> None: ...


def snapshot(entry: dict[str, Any]) -> Snapshot:
    """One load balancer's flat statuses (l3dist's answer) as kind -> id -> statuses."""
    lb = entry["loadbalancer"]
    result: Snapshot = {"loadbalancers": {lb["id"]: _state(lb)}}
    for kind in KINDS:
        result[kind] = {obj["id"]: _state(obj) for obj in entry.get(kind, [])}
    return result


def _state(obj: dict[str, Any]) -> tuple[str, str, str | None]:
    return (obj["provisioning_status"], obj["operating_status"], obj.get("updated_at"))


def octavia_children(octavia_lb: Any) -> dict[str, set[str]]:
    """The children Octavia holds for a load balancer (its provider dict, as
    ``get_loadbalancer`` returns it), by kind."""
    found: dict[str, set[str]] = {kind: set() for kind in KINDS}
    if not octavia_lb:
        return found
    data = octavia_lb if isinstance(octavia_lb, dict) else octavia_lb.to_dict(recurse=True)
    for listener in data.get("listeners") or []:
        if listener.get("listener_id"):
            found["listeners"].add(listener["listener_id"])
    for pool in data.get("pools") or []:
        if not pool.get("pool_id"):
            continue
        found["pools"].add(pool["pool_id"])
        for member in pool.get("members") or []:
            if member.get("member_id"):
                found["members"].add(member["member_id"])
        monitor = pool.get("healthmonitor") or {}
        if isinstance(monitor, dict) and monitor.get("healthmonitor_id"):
            found["healthmonitors"].add(monitor["healthmonitor_id"])
    return found


def status_update(
    now: Snapshot, before: Snapshot | None, octavia_has: dict[str, set[str]] | None = None
) -> dict[str, list[dict[str, str]]]:
    """DriverLibrary's status dict for a load balancer that changed: every object it has (the
    whole load balancer, see the module's invariants), and ``DELETED`` for every child that
    was there before (or that Octavia still has) and is gone from l3dist. Empty when nothing
    changed."""
    if now == before:
        return {}
    update: dict[str, list[dict[str, str]]] = {"loadbalancers": [], **{k: [] for k in KINDS}}
    for kind, objects in now.items():
        for object_id, (provisioning, operating, _) in objects.items():
            entry = {"id": object_id, "provisioning_status": provisioning}
            update[kind].append({**entry, "operating_status": operating})
    for kind in KINDS:
        gone = set((before or {}).get(kind, {})) | set((octavia_has or {}).get(kind, set()))
        for object_id in sorted(gone - set(now.get(kind, {}))):
            update[kind].append({"id": object_id, "provisioning_status": "DELETED"})
    return {kind: entries for kind, entries in update.items() if entries}


class StatusSync:
    """One pass per :meth:`sync_once`; keeps what it last pushed per load balancer."""

    def __init__(self, client: L3distClient, octavia: OctaviaSide) -> None:
        self.client = client
        self.octavia = octavia
        self.pushed: dict[str, Snapshot] = {}
        self.stats_pushed: dict[str, dict[str, Any]] = {}
        self.started = False  # a first pass done (the restart cases handled)
        self.reasons_logged: dict[str, str] = {}  # lb id -> the ERROR reason logged for it

    def sync_once(self) -> int:
        """Push what changed; how many load balancers had something to push."""
        params = {"provider": PROVIDER}
        if not self.started:
            params["include_deleted"] = "true"
        answer = self.client.request("GET", "/v2/lbaas/statuses", params=params)
        current = {entry["loadbalancer"]["id"]: entry for entry in answer.get("statuses", [])}
        pushes = self._push_deleted_while_away(answer.get("deleted", []))
        self.started = True
        for lb_id, entry in current.items():
            self._log_error_reason(entry["loadbalancer"])
            now = snapshot(entry)
            before = self.pushed.get(lb_id)
            if now == before:
                continue
            update = status_update(now, before, self._octavia_children(lb_id))
            if update:
                self.octavia.update_loadbalancer_status(update)
                pushes += 1
            self.pushed[lb_id] = now
        for lb_id in sorted(set(self.pushed) - set(current)):
            deleted = {"loadbalancers": [{"id": lb_id, "provisioning_status": "DELETED"}]}
            self.octavia.update_loadbalancer_status(deleted)
            del self.pushed[lb_id]
            self.reasons_logged.pop(lb_id, None)
            pushes += 1
        self._push_statistics(current.values())
        return pushes

    def _push_statistics(self, entries: Any) -> None:
        """The listeners whose statistics changed since the last push, in one call."""
        now = {s["id"]: s for entry in entries for s in entry.get("listener_statistics", [])}
        changed = [stats for lid, stats in now.items() if self.stats_pushed.get(lid) != stats]
        if changed:
            self.octavia.update_listener_statistics({"listeners": changed})
        self.stats_pushed = now

    def _push_deleted_while_away(self, deleted: list[str]) -> int:
        """DELETED for each load balancer l3dist deleted that Octavia still holds (Octavia's
        get answers None for one it deleted)."""
        pushes = 0
        for lb_id in deleted:
            try:
                held = self.octavia.get_loadbalancer(lb_id)
            except Exception:  # no get socket: this restart case stays as it was
                LOG.debug("l3dist agent: cannot ask Octavia for %s", lb_id, exc_info=True)
                return pushes
            if held:
                LOG.info("l3dist agent: load balancer %s was deleted meanwhile", lb_id)
                gone = {"loadbalancers": [{"id": lb_id, "provisioning_status": "DELETED"}]}
                self.octavia.update_loadbalancer_status(gone)
                pushes += 1
        return pushes

    def _octavia_children(self, lb_id: str) -> dict[str, set[str]] | None:
        try:
            return octavia_children(self.octavia.get_loadbalancer(lb_id))
        except Exception:  # Octavia's get socket: its absence only costs the restart case
            LOG.debug("l3dist agent: Octavia's children of %s unknown", lb_id, exc_info=True)
            return None

    def _log_error_reason(self, lb: dict[str, Any]) -> None:
        """Log l3dist's reason once per load balancer and reason. Apart from the push: the
        worker marks the load balancer ERROR before it records the failed job, so a pass can
        see ERROR without a reason and the next one the reason with nothing else changed."""
        reason = lb.get("status_reason") if lb.get("provisioning_status") == "ERROR" else None
        if not reason:
            self.reasons_logged.pop(lb["id"], None)
        elif self.reasons_logged.get(lb["id"]) != reason:
            LOG.error("l3dist: load balancer %s is in ERROR: %s", lb["id"], reason)
            self.reasons_logged[lb["id"]] = reason


def run(sync: StatusSync, exit_event: threading.Event | Any, interval: float) -> None:
    """Tick until exit_event is set; l3dist or Octavia being unreachable is logged and tried
    again at the next tick."""
    while not exit_event.is_set():
        try:
            sync.sync_once()
        except L3distError as error:
            LOG.warning("l3dist provider agent: %s", error)
        except Exception:
            LOG.exception("l3dist provider agent: a status push failed")
        exit_event.wait(interval)


def main(exit_event: Any) -> None:
    """The ``octavia.driver_agent.provider_agents`` entry point (Octavia's driver agent has
    loaded octavia.conf into ``cfg.CONF`` before it starts this)."""
    from octavia_lib.api.drivers import driver_lib
    from oslo_config import cfg

    from l3dist_octavia.config import from_oslo_config

    settings = from_oslo_config()
    agent_conf = cfg.CONF.driver_agent
    octavia = driver_lib.DriverLibrary(
        status_socket=agent_conf.status_socket_path,
        stats_socket=agent_conf.stats_socket_path,
        get_socket=agent_conf.get_socket_path,
    )
    client = L3distClient(settings)
    LOG.info("l3dist provider agent: statuses from %s every %s s", settings.api_url,
             settings.status_interval)  # fmt: skip
    try:
        run(StatusSync(client, octavia), exit_event, settings.status_interval)
    finally:
        client.close()
