"""The noop amphora driver: every agent call answered in process, as a healthy agent would.

For the API tests (and any controller run without amphorae, with the noop compute driver):
the worker's real flows run to the end, so the statuses the API shows are the worker's. It
keeps what each amphora was told (its VIPs, registrations, HAProxy configurations, speakers)
so a test can read it, and it checks nothing a real agent would refuse: a noop driver proves
the controller's bookkeeping, never that a feature works (the lab tests do that).

Invariants: answers have the real agent's shapes (the same :class:`AgentClient` parses them);
BGP sessions are reported Established for every peer the amphora was given (one peer ``noop``
when it was given none), so waits for sessions end at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from l3dist.amphora_client import AgentClient
from l3dist.amphora_client.driver import AmphoraDriver
from l3dist.contracts.agent_api import AMPHORA_PATH, BFD_PATH, BGP_PATH, FENCE_PATH, FRONTEND_PATH

Key = tuple[str, str, str | None]  # vip_ip, nexthop_ip, peer_id
Registration = tuple[str, str, str, str | None]  # amphora_id, vip_ip, nexthop_ip, peer_id


@dataclass
class NoopAgent:
    """What one amphora's agent was told."""

    name: str
    vips: set[str] = field(default_factory=set)
    registrations: dict[Registration, dict[str, Any]] = field(default_factory=dict)
    vip_routes: dict[Key, dict[str, Any]] = field(default_factory=dict)
    haproxy: dict[str, str] = field(default_factory=dict)
    speakers: list[dict[str, Any]] = field(default_factory=list)
    bfd_peers: dict[str, Any] = field(default_factory=dict)
    flow_rescue: dict[str, Any] = field(default_factory=dict)
    frontend: dict[str, Any] | None = None
    assignment: dict[str, Any] | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    def peers(self) -> list[dict[str, Any]]:
        found = [
            {"peer_id": p["id"], "peer_ip": p["peer_ip"], "remote_as": p["remote_as"]}
            for s in self.speakers
            for p in s.get("peers", [])
        ]
        found = found or [{"peer_id": "noop", "peer_ip": "0.0.0.0", "remote_as": 0}]
        return [{**p, "state": "Established", "established": True} for p in found]


def _key(body: dict[str, Any]) -> Key:
    return str(body["vip_ip"]), str(body["nexthop_ip"]), body.get("peer_id")


def _json(status: int, body: Any = None) -> httpx.Response:
    if body is None:
        return httpx.Response(status)
    return httpx.Response(status, json=body)


class NoopAgents:
    """Every amphora's noop agent, by name; one lock for all (calls come from task threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.agents: dict[str, NoopAgent] = {}

    def get(self, name: str) -> NoopAgent:
        with self.lock:
            return self.agents.setdefault(name, NoopAgent(name))

    def transport(self, name: str) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            with self.lock:
                agent = self.agents.setdefault(name, NoopAgent(name))
                path = unquote(request.url.path)
                agent.calls.append((request.method, path))
                return _answer(agent, request, path)

        return httpx.MockTransport(handle)


def _answer(agent: NoopAgent, request: httpx.Request, path: str) -> httpx.Response:
    method = request.method
    body: Any = json.loads(request.content) if request.content and _is_json(request) else None
    params = dict(request.url.params)
    handler = _ROUTES.get((method, _route(path)))
    if handler is None:
        return _json(404, {"message": f"no {method} {path} on the noop agent", "field": None})
    return handler(agent, path, body, params, request)


def _is_json(request: httpx.Request) -> bool:
    return str(request.headers.get("content-type", "")).startswith("application/json")


def _route(path: str) -> str:
    """The path with its variable part (a VIP, a load balancer, an amphora id) as ``*``."""
    parts = path.split("/")
    if path.startswith("/1.0/plug/vip/"):
        return "/1.0/plug/vip/*"
    if path.startswith("/1.0/loadbalancer/"):
        return "/1.0/loadbalancer/*/haproxy"
    if path.startswith("/1.0/distributor/vips/"):
        return "/1.0/distributor/vips/*"
    if path.startswith("/1.0/distributor/amphorae/"):
        return "/1.0/distributor/amphorae/*" + ("/drain" if parts[-1] == "drain" else "")
    return path


Handler = Callable[[NoopAgent, str, Any, dict[str, str], httpx.Request], httpx.Response]


def _info(agent: NoopAgent, *_: Any) -> httpx.Response:
    addresses = [str(a).split("/")[0] for a in (agent.frontend or {}).get("addresses", [])]
    return _json(200, {"amphora_id": agent.name, "frontend_addresses": addresses,
                       "connections": {}, "vips": sorted(agent.vips)})  # fmt: skip


def _plug_vip(agent: NoopAgent, path: str, *_: Any) -> httpx.Response:
    vip = path.rsplit("/", 1)[1]
    created = vip not in agent.vips
    agent.vips.add(vip)
    return _json(202 if created else 200, {"message": "OK"})


def _unplug_vip(agent: NoopAgent, path: str, *_: Any) -> httpx.Response:
    agent.vips.discard(path.rsplit("/", 1)[1])
    return _json(204)


def _register_amphora(agent: NoopAgent, _: str, body: Any, *__: Any) -> httpx.Response:
    row = {"peer_id": None, **body, "announced_to": [], "withdrawn": None, "draining": False}
    agent.registrations[(str(body["amphora_id"]), *_key(body))] = row
    return _json(201, {"registration": row})


def _same_route(agent: NoopAgent, path: str, route: dict[str, Any]) -> list[Registration]:
    """The registrations of the path's amphora for the route (for its peer, or every peer)."""
    amphora_id = path.split("/")[4]
    vip, nexthop, peer = _key(route)
    return [k for k in agent.registrations
            if k[:3] == (amphora_id, vip, nexthop) and peer in (None, k[3])]  # fmt: skip


def _unregister_amphora(agent: NoopAgent, path: str, _: Any, params: dict[str, str],
                        *__: Any) -> httpx.Response:  # fmt: skip
    found = _same_route(agent, path, params)
    if not found:
        return _json(404, {"message": "not registered", "field": "vip_ip"})
    for key in found:
        del agent.registrations[key]
    return _json(204)


def _drain_amphora(agent: NoopAgent, path: str, body: Any, *_: Any) -> httpx.Response:
    found = _same_route(agent, path, body)
    if not found:
        return _json(404, {"message": "not registered", "field": "vip_ip"})
    for key in found:
        agent.registrations[key].update(withdrawn="draining", draining=True)
    return _json(202, {"registration": agent.registrations[found[0]]})


def _list_amphorae(agent: NoopAgent, _: str, __: Any, params: dict[str, str],
                   *___: Any) -> httpx.Response:  # fmt: skip
    rows = [r for r in agent.registrations.values()
            if all(str(r.get(k)) == v for k, v in params.items())]  # fmt: skip
    return _json(200, {"amphorae": rows})


def _register_vip(agent: NoopAgent, _: str, body: Any, *__: Any) -> httpx.Response:
    row = {**body, "announced_to": []}
    agent.vip_routes[_key(body)] = row
    return _json(201, {"vip": row})


def _unregister_vip(agent: NoopAgent, path: str, _: Any, params: dict[str, str],
                    *__: Any) -> httpx.Response:  # fmt: skip
    vip = path.rsplit("/", 1)[1]
    for key in [k for k in agent.vip_routes if k[:2] == (vip, params["nexthop_ip"])]:
        if params.get("peer_id") in (None, key[2]):
            del agent.vip_routes[key]
    return _json(204)


def _update_vips(agent: NoopAgent, _: str, body: Any, *__: Any) -> httpx.Response:
    removed = [k for r in body.get("remove", []) for k in list(agent.vip_routes)
               if k[:2] == _key(r)[:2] and r.get("peer_id") in (None, k[2])]  # fmt: skip
    for key in removed:
        agent.vip_routes.pop(key, None)
    fresh = [r for r in body.get("add", []) if _key(r) not in agent.vip_routes]
    for row in fresh:
        agent.vip_routes[_key(row)] = {"peer_id": None, **row, "announced_to": []}
    return _json(200, {"added": len(fresh), "removed": len(set(removed))})


def _list_vips(agent: NoopAgent, *_: Any) -> httpx.Response:
    return _json(200, {"vips": list(agent.vip_routes.values())})


def _bgp_status(agent: NoopAgent, *_: Any) -> httpx.Response:
    routes = [{"prefix": k[1], "nexthop_ip": k[2]} for k in agent.registrations]
    return _json(200, {"peers": agent.peers(), "routes": routes})


def _put_haproxy(agent: NoopAgent, path: str, _: Any, __: Any,
                 request: httpx.Request) -> httpx.Response:  # fmt: skip
    agent.haproxy[path.split("/")[3]] = request.content.decode()
    return _json(202, {"message": "OK"})


def _get_haproxy(agent: NoopAgent, path: str, *_: Any) -> httpx.Response:
    text = agent.haproxy.get(path.split("/")[3])
    if text is None:
        return _json(404, {"message": "no configuration", "field": None})
    return httpx.Response(200, text=text, headers={"content-type": "text/plain"})


def _delete_haproxy(agent: NoopAgent, path: str, *_: Any) -> httpx.Response:
    agent.haproxy.pop(path.split("/")[3], None)
    return _json(204)


def _store(attribute: str) -> Handler:
    """A PUT whose body the agent keeps as it is."""

    def handle(agent: NoopAgent, _: str, body: Any, *__: Any) -> httpx.Response:
        setattr(agent, attribute, body)
        return _json(200, {"changed": True})

    return handle


def _speakers(agent: NoopAgent, _: str, body: Any, *__: Any) -> httpx.Response:
    agent.speakers = list(body["speakers"])
    return _json(200, {"changed": True})


def _host_state(agent: NoopAgent, *_: Any) -> httpx.Response:
    assigned = (agent.assignment or {}).get("amphora_id")
    return _json(200, {"host_id": agent.name, "amphora_id": assigned, "running": bool(assigned),
                       "namespace": bool(assigned), "fenced": None})  # fmt: skip


def _assign(agent: NoopAgent, _: str, body: Any, *__: Any) -> httpx.Response:
    agent.assignment = body
    return _host_state(agent)


def _reset(agent: NoopAgent, *_: Any) -> httpx.Response:
    agent.assignment = None
    agent.vips.clear()
    agent.registrations.clear()
    agent.vip_routes.clear()
    return _host_state(agent)


_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/1.0/info"): _info,
    ("POST", "/1.0/plug/vip/*"): _plug_vip,
    ("DELETE", "/1.0/plug/vip/*"): _unplug_vip,
    ("POST", "/1.0/distributor/amphorae"): _register_amphora,
    ("GET", "/1.0/distributor/amphorae"): _list_amphorae,
    ("DELETE", "/1.0/distributor/amphorae/*"): _unregister_amphora,
    ("POST", "/1.0/distributor/amphorae/*/drain"): _drain_amphora,
    ("POST", "/1.0/distributor/vips"): _register_vip,
    ("GET", "/1.0/distributor/vips"): _list_vips,
    ("PATCH", "/1.0/distributor/vips"): _update_vips,
    ("DELETE", "/1.0/distributor/vips/*"): _unregister_vip,
    ("GET", "/1.0/distributor/bgp"): _bgp_status,
    ("PUT", "/1.0/loadbalancer/*/haproxy"): _put_haproxy,
    ("GET", "/1.0/loadbalancer/*/haproxy"): _get_haproxy,
    ("DELETE", "/1.0/loadbalancer/*/haproxy"): _delete_haproxy,
    ("PUT", "/1.0/distributor/flow-rescue"): _store("flow_rescue"),
    ("GET", "/1.0/distributor/flow-rescue"): lambda a, *_: _json(200, a.flow_rescue),
    ("DELETE", "/1.0/distributor/flow-rescue"): lambda a, *_: _json(204),
    ("PUT", AMPHORA_PATH): _assign,
    ("GET", AMPHORA_PATH): _host_state,
    ("DELETE", AMPHORA_PATH): _reset,
    ("DELETE", FENCE_PATH): lambda *_: _json(200, {"fenced": None, "was": None}),
    ("GET", FENCE_PATH): lambda *_: _json(200, {"fenced": None}),
    ("PUT", BGP_PATH): _speakers,
    ("PUT", BFD_PATH): _store("bfd_peers"),
    ("GET", BFD_PATH): lambda *_: _json(200, {"sessions": {}}),
    ("PUT", FRONTEND_PATH): _store("frontend"),
}


class NoopAmphoraDriver(AmphoraDriver):
    """Agents that answer in process; ``agents`` holds what each was told."""

    def __init__(self, tls_context: object = None) -> None:
        self.agents = NoopAgents()

    def client(self, name: str, address: str, port: int, timeout: float) -> AgentClient:
        return AgentClient(name, address, None, timeout=timeout, port=port,
                           transport=self.agents.transport(name))  # fmt: skip
