"""The amphora agent's HTTP API (``/1.0/...``, versioned like Octavia's amphora agent).

Besides ``/1.0/info`` and VIP plugging, it serves the spec's extended amphora API: Register,
Unregister, List and Drain Amphora; Register, Unregister and List VIP (routes to endpoints that
are not amphorae); and a BGP status call that says what is announced where.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import astuple
from typing import Annotated, Any, Protocol

from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from l3dist.amphora_agent import flow_rescue
from l3dist.amphora_agent.host import ConfigDriveAgent
from l3dist.amphora_agent.metrics import exposition
from l3dist.amphora_agent.service import AgentError, AgentService, Registration, VipRoute
from l3dist.contracts.agent_api import (
    AMPHORA_PATH,
    BFD_PATH,
    BGP_PATH,
    FENCE_PATH,
    FRONTEND_PATH,
    AmphoraAssignment,
    AmphoraId,
    BfdPeers,
    DrainAmphora,
    FlowRescueBody,
    FrontendPlug,
    IPAddress,
    LoadBalancerId,
    PeerId,
    RegisterAmphora,
    RegisterVip,
    SpeakersUpdate,
    VipRoutesUpdate,
)


class AgentProvider(Protocol):
    """What the API serves: the amphora's service, and the host calls (host.py)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def current(self) -> AgentService: ...

    def info(self) -> dict[str, Any]: ...

    def state(self) -> dict[str, Any]: ...

    def assign(self, assignment: AmphoraAssignment) -> dict[str, Any]: ...

    def reset(self) -> dict[str, Any]: ...

    def plug_frontend(self, port: FrontendPlug) -> dict[str, Any]: ...

    def update_speakers(self, update: SpeakersUpdate) -> dict[str, Any]: ...


def _field_of(error: dict[str, Any]) -> str:
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    return ".".join(loc) or "body"


def create_app(provider: AgentProvider | AgentService, manage_lifecycle: bool = True) -> FastAPI:
    """The agent API over a provider: an amphora's one service (config drive), or an amphora
    host whose service exists once the controller assigned it an amphora (every amphora call
    is then 409 until it has)."""
    if isinstance(provider, AgentService):
        provider = ConfigDriveAgent(provider)
    agent: AgentProvider = provider

    def service() -> AgentService:
        return agent.current()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await run_in_threadpool(agent.start)
        try:
            yield
        finally:
            if manage_lifecycle:
                await run_in_threadpool(agent.stop)

    app = FastAPI(title="l3dist amphora agent", version="1.0", lifespan=lifespan)

    @app.exception_handler(AgentError)
    async def _agent_error(_: Request, exc: AgentError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status, content={"message": exc.message, "field": exc.field}
        )

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        field = _field_of(first)
        if first.get("type") == "extra_forbidden":
            message = f"unknown field {field}"
        else:
            message = f"{field}: {first.get('msg', 'invalid value')}"
        return JSONResponse(status_code=400, content={"message": message, "field": field})

    @app.get("/1.0/info")
    def info() -> dict[str, Any]:
        return agent.info()

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(exposition(service), media_type=CONTENT_TYPE_LATEST)

    @app.put(AMPHORA_PATH)
    def assign_amphora(body: AmphoraAssignment) -> dict[str, Any]:
        return agent.assign(body)

    @app.get(AMPHORA_PATH)
    def host_amphora() -> dict[str, Any]:
        return agent.state()

    @app.delete(AMPHORA_PATH)
    def reset_amphora() -> dict[str, Any]:
        return agent.reset()

    @app.put(FRONTEND_PATH)
    def plug_frontend(body: FrontendPlug) -> dict[str, Any]:
        return agent.plug_frontend(body)

    @app.put(BGP_PATH)
    def update_speakers(body: SpeakersUpdate) -> dict[str, Any]:
        return agent.update_speakers(body)

    @app.put(BFD_PATH)
    def set_bfd_peers(body: BfdPeers) -> dict[str, Any]:
        return service().set_bfd_peers(body)

    @app.get(BFD_PATH)
    def bfd_status() -> dict[str, Any]:
        return service().bfd.status()

    @app.post("/1.0/plug/vip/{vip}", status_code=202)
    def plug_vip(vip: IPAddress, response: Response) -> dict[str, Any]:
        created = service().plug_vip(str(vip))
        response.status_code = 202 if created else 200
        return {"message": "OK", "details": f"VIP {vip} plugged on loopback"}

    @app.delete("/1.0/plug/vip/{vip}", status_code=204)
    def unplug_vip(vip: IPAddress) -> Response:
        service().unplug_vip(str(vip))
        return Response(status_code=204)

    @app.post("/1.0/distributor/amphorae", status_code=201)
    def register_amphora(body: RegisterAmphora) -> dict[str, Any]:
        reg = service().register(
            Registration(body.amphora_id, str(body.vip_ip), str(body.nexthop_ip), body.peer_id)
        )
        return {
            "registration": service().list_registrations(
                reg.amphora_id, reg.vip_ip, reg.nexthop_ip, reg.peer_id
            )[0]
        }

    @app.delete("/1.0/distributor/amphorae/{amphora_id}", status_code=204)
    def unregister_amphora(
        amphora_id: AmphoraId,
        vip_ip: Annotated[IPAddress, Query()],
        nexthop_ip: Annotated[IPAddress, Query()],
        peer_id: Annotated[PeerId | None, Query()] = None,
    ) -> Response:
        service().unregister(Registration(amphora_id, str(vip_ip), str(nexthop_ip), peer_id))
        return Response(status_code=204)

    @app.post("/1.0/distributor/amphorae/{amphora_id}/drain", status_code=202)
    def drain_amphora(amphora_id: AmphoraId, body: DrainAmphora) -> dict[str, Any]:
        reg = Registration(amphora_id, str(body.vip_ip), str(body.nexthop_ip), body.peer_id)
        service().drain(reg)
        return {"registration": service().list_registrations(*astuple(reg))[0]}

    @app.get("/1.0/distributor/amphorae")
    def list_amphorae(
        amphora_id: Annotated[AmphoraId | None, Query()] = None,
        vip_ip: Annotated[IPAddress | None, Query()] = None,
        nexthop_ip: Annotated[IPAddress | None, Query()] = None,
        peer_id: Annotated[PeerId | None, Query()] = None,
    ) -> dict[str, Any]:
        return {
            "amphorae": service().list_registrations(
                amphora_id,
                str(vip_ip) if vip_ip else None,
                str(nexthop_ip) if nexthop_ip else None,
                peer_id,
            )
        }

    @app.post("/1.0/distributor/vips", status_code=201)
    def register_vip(body: RegisterVip) -> dict[str, Any]:
        route = service().register_vip(
            VipRoute(str(body.vip_ip), str(body.nexthop_ip), body.peer_id)
        )
        return {"vip": service().list_vip_routes(*astuple(route))[0]}

    @app.patch("/1.0/distributor/vips")
    def update_vips(body: VipRoutesUpdate) -> dict[str, Any]:
        def routes(entries: list[RegisterVip]) -> list[VipRoute]:
            return [VipRoute(str(e.vip_ip), str(e.nexthop_ip), e.peer_id) for e in entries]

        return service().update_vip_routes(routes(body.add), routes(body.remove))

    @app.delete("/1.0/distributor/vips/{vip_ip}", status_code=204)
    def unregister_vip(
        vip_ip: IPAddress,
        nexthop_ip: Annotated[IPAddress, Query()],
        peer_id: Annotated[PeerId | None, Query()] = None,
    ) -> Response:
        service().unregister_vip(VipRoute(str(vip_ip), str(nexthop_ip), peer_id))
        return Response(status_code=204)

    @app.get("/1.0/distributor/vips")
    def list_vips(
        vip_ip: Annotated[IPAddress | None, Query()] = None,
        nexthop_ip: Annotated[IPAddress | None, Query()] = None,
        peer_id: Annotated[PeerId | None, Query()] = None,
    ) -> dict[str, Any]:
        return {
            "vips": service().list_vip_routes(
                str(vip_ip) if vip_ip else None, str(nexthop_ip) if nexthop_ip else None, peer_id
            )
        }

    @app.put("/1.0/loadbalancer/{load_balancer_id}/haproxy", status_code=202)
    async def put_haproxy(load_balancer_id: LoadBalancerId, request: Request) -> Response:
        """Octavia's upload-config call: the HAProxy configuration, checked, then a hitless
        reload (202 when it changed, 200 when it was already in force)."""
        body = (await request.body()).decode("utf-8", errors="strict")
        changed = await run_in_threadpool(service().put_haproxy, load_balancer_id, body)
        return JSONResponse(
            status_code=202 if changed else 200,
            content={"message": "OK", "details": "configuration in force"},
        )

    @app.get("/1.0/loadbalancer/{load_balancer_id}/haproxy")
    def get_haproxy(load_balancer_id: LoadBalancerId) -> Response:
        return PlainTextResponse(service().get_haproxy(load_balancer_id))

    @app.delete("/1.0/loadbalancer/{load_balancer_id}/haproxy", status_code=204)
    def delete_haproxy(load_balancer_id: LoadBalancerId) -> Response:
        service().delete_haproxy(load_balancer_id)
        return Response(status_code=204)

    @app.put("/1.0/distributor/flow-rescue")
    def set_flow_rescue(body: FlowRescueBody) -> dict[str, Any]:
        return service().set_rescue(
            flow_rescue.RescueConfig(
                peers=[str(p) for p in body.peers],
                router_macs=[m.lower() for m in body.router_macs],
            )
        )

    @app.get("/1.0/distributor/flow-rescue")
    def get_flow_rescue() -> dict[str, Any]:
        return service().rescue_status()

    @app.delete("/1.0/distributor/flow-rescue", status_code=204)
    def delete_flow_rescue() -> Response:
        service().clear_rescue()
        return Response(status_code=204)

    @app.get(FENCE_PATH)
    def get_fence() -> dict[str, Any]:
        return {"fenced": service().fenced}

    @app.delete(FENCE_PATH)
    def clear_fence() -> dict[str, Any]:
        return service().clear_fence()

    @app.get("/1.0/distributor/bgp")
    def bgp_status() -> dict[str, Any]:
        return service().bgp_status()

    return app
