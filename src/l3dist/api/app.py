"""The API application: routers, Octavia-style errors, and the version document at ``/``."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from l3dist import __version__
from l3dist.api import (
    amphora_hosts,
    amphorae,
    dashboard,
    distributors,
    floatingips,
    healthmonitors,
    listeners,
    loadbalancers,
    member_batch,
    networks,
    pools,
    ports,
    router_view,
    statistics,
    statuses,
    vip_ports,
    vip_routes,
    virtual_ips,
)
from l3dist.api.common import AppState, NetworkLookup
from l3dist.api.errors import ApiError, fault
from l3dist.api.metrics import RequestMetrics, metrics
from l3dist.certificates import LocalCA
from l3dist.common.config import ApiConfig
from l3dist.db.session import Database

API_VERSION = "v2.27"
VERSION_UPDATED = "2026-11-01T00:00:00Z"


class V20Alias:
    """Serve every ``/v2/...`` path as ``/v2.0/...`` too, as Octavia does (clients use v2.0)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.state = app.state
        self.openapi = app.openapi
        self.router = app.router

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if path == "/v2.0" or path.startswith("/v2.0/"):
                scope = dict(scope, path="/v2" + path[len("/v2.0") :])
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


_FIELD_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_:]*$")


def _field_of(error: dict[str, Any]) -> str:
    """The field as the API names it: the location without the request envelope
    ("loadbalancer") and without pydantic's own steps (union members such as
    ``lax-or-strict[...]`` or ``function-plain[...]``)."""
    raw = [p for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    if len(raw) > 1 and error.get("loc", ("",))[0] == "body":
        raw = raw[1:]
    parts = [str(p) for p in raw if isinstance(p, int) or _FIELD_PART.match(str(p))]
    return ".".join(parts) or "body"


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, str]:
    """One message for the first field in error; a field that fails every member of a union
    (an address that is neither IPv4 nor IPv6) lists each member's reason once."""
    if not errors:
        return "Invalid input", "body"
    first = errors[0]
    field = _field_of(first)
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        return f"Invalid input: unknown field {field}", field
    if kind == "missing":
        return f"Invalid input: {field} is required", field
    reasons: list[str] = []
    for error in errors:
        reason = str(error.get("msg", "invalid value"))
        if _field_of(error) == field and reason not in reasons:
            reasons.append(reason)
    return f"Invalid input for field/attribute {field}: {'; '.join(reasons)}", field


def create_app(
    config: ApiConfig, db: Database, network: NetworkLookup, ca: LocalCA | None = None
) -> FastAPI:
    app = FastAPI(
        title="l3dist API",
        version=__version__,
        description="Octavia v2 style load balancer API with L3 active-active distributors.",
    )
    app.state.l3dist = AppState(config=config, db=db, network=network, ca=ca)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=exc.body())

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message, field = _validation_message(list(errors))
        return JSONResponse(status_code=400, content=fault(400, message, field))

    @app.exception_handler(OperationalError)
    async def _database_away(_: Request, exc: OperationalError) -> JSONResponse:
        # The database is down or unreachable (restarting, failing over): nothing was
        # accepted, the client retries. Not a 500: nothing is wrong with the request or us.
        return JSONResponse(
            status_code=503,
            content=fault(503, "the database is unavailable; nothing was changed, retry later"),
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content=fault(exc.status_code, str(exc.detail))
        )

    app.add_middleware(RequestMetrics)
    app.add_route("/metrics", metrics, include_in_schema=False)

    @app.get("/", tags=["versions"])
    def versions(request: Request) -> dict[str, Any]:
        """The version document Octavia serves; clients read it before anything else."""
        base = str(request.base_url).rstrip("/")
        return {
            "versions": [
                {
                    "id": API_VERSION,
                    "status": "CURRENT",
                    "updated": VERSION_UPDATED,
                    "links": [{"href": f"{base}/v2", "rel": "self"}],
                }
            ]
        }

    @app.get("/v2", tags=["versions"])
    def version_v2(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {
            "version": {
                "id": API_VERSION,
                "status": "CURRENT",
                "updated": VERSION_UPDATED,
                "links": [{"href": f"{base}/v2", "rel": "self"}],
            }
        }

    for module in (
        loadbalancers,
        listeners,
        pools,
        member_batch,
        healthmonitors,
        distributors,
        amphorae,
        amphora_hosts,
        networks,
        ports,
        vip_ports,
        floatingips,
        virtual_ips,
        vip_routes,
        statuses,
        statistics,
        router_view,
        dashboard,
    ):
        app.include_router(module.router)
    return V20Alias(app)  # type: ignore[return-value]


def app_from_config() -> FastAPI:
    """The app for ``uvicorn --factory`` and ``l3dist api``: config file, network driver chosen
    by ``[network] driver`` (an entry point)."""
    from l3dist.common import config as config_module
    from l3dist.network import drivers

    cfg = config_module.load()
    db = Database(cfg.database.url)
    return create_app(
        cfg.api, db, drivers.load(cfg.network.driver, db), LocalCA(cfg.certificates.ca_dir)
    )
