"""What every API resource shares: the app state, the caller's context, object lookup with
project scoping, and Octavia's load balancer lock (test-and-set of its provisioning status)."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from l3dist.api.context import RequestContext, context_from_request
from l3dist.api.errors import ApiError, conflict, forbidden, immutable, not_found
from l3dist.api.query import ListSpec, paginate, select_fields
from l3dist.certificates import LocalCA
from l3dist.common import constants as c
from l3dist.common.config import ApiConfig
from l3dist.db.models import Base, LoadBalancer
from l3dist.db.session import Database
from l3dist.network.models import Network, Subnet

M = TypeVar("M", bound=Base)


class NetworkLookup(Protocol):
    """The part of the network driver the API uses: lookups to validate requests, and the VIP
    reservation (the driver's IPAM is the one place addresses are handed out)."""

    @property
    def networks(self) -> dict[str, Network]: ...

    def get_network(self, network_id: str) -> Network: ...

    def get_subnet(self, subnet_id: str) -> Subnet: ...

    def allocate_vip(self, loadbalancer: Any) -> Any: ...

    def deallocate_vip(self, vip: Any) -> None: ...


@dataclass
class AppState:
    config: ApiConfig
    db: Database
    network: NetworkLookup
    # The controller's CA (signs enrolling hosts' certificates); None: no enrollment here.
    ca: LocalCA | None = None


class Body(BaseModel):
    """Request bodies: unknown fields are refused (400 naming them)."""

    model_config = ConfigDict(extra="forbid")


def state(request: Request) -> AppState:
    result: AppState = request.app.state.l3dist
    return result


def get_context(request: Request) -> RequestContext:
    app_state = state(request)
    return context_from_request(request, app_state.config, app_state.db)


def timestamp(value: datetime.datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() if value else None


def visible(obj: Any, ctx: RequestContext) -> bool:
    if getattr(obj, "provisioning_status", None) == c.DELETED:
        return False
    project = getattr(obj, "project_id", None)
    return ctx.is_admin or project is None or project == ctx.project_id


def get_owned(
    session: Session,
    model: type[M],
    object_id: str,
    ctx: RequestContext,
    kind: str,
    field: str | None = None,
) -> M:
    """An object the caller may see; another project's object is 404, as if absent."""
    obj = session.get(model, object_id)
    if obj is None or not visible(obj, ctx):
        raise not_found(kind, object_id, field)
    return obj


def lock_load_balancer(session: Session, lb_id: str, new_status: str = c.PENDING_UPDATE) -> None:
    """Move a load balancer from ACTIVE or ERROR to new_status, or refuse with 409.

    A single conditional UPDATE, so two API workers racing on one load balancer cannot both win.
    """
    result = session.execute(
        update(LoadBalancer)
        .where(
            LoadBalancer.id == lb_id,
            LoadBalancer.provisioning_status.in_((c.ACTIVE, c.ERROR)),
        )
        .values(provisioning_status=new_status)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise immutable("Load Balancer", lb_id)


SERVICE_ROLES = frozenset({"service"})


def claim_id(
    session: Session, model: type[Base], requested: uuid.UUID | None, ctx: RequestContext
) -> dict[str, str]:
    """The constructor argument for an object created under a caller-chosen id, or nothing.

    Octavia's provider drivers (l3dist_octavia) create every object under the id Octavia
    already gave it, so both databases name it alike. Only an admin or a service may choose
    (a tenant could otherwise squat another project's future ids); an id ever used, even by
    an object now DELETED, is 409 naming the field.
    """
    if requested is None:
        return {}
    if not (ctx.is_admin or ctx.roles & SERVICE_ROLES):
        raise ApiError(403, "id: only an admin or a service can choose an object's id.", "id")
    object_id = str(requested)
    if session.get(model, object_id) is not None:
        raise conflict(f"id {object_id} is already taken", "id")
    return {"id": object_id}


def check_project(ctx: RequestContext, requested: str | None) -> str:
    """The project an object is created in: the caller's, or any project for an admin."""
    if requested is None or requested == ctx.project_id:
        return ctx.project_id
    if not ctx.is_admin:
        raise forbidden("project_id: only an admin can create objects in another project.")
    return requested


class PlainJSONResponse(JSONResponse):
    """An answer made of plain JSON values (what the resources' to_dict functions make),
    written by json.dumps directly: FastAPI's default walks every value of it through
    jsonable_encoder and pydantic first, which costs a page of 1,000 objects about as much
    as reading it from the database. A value json cannot write (a datetime, say) takes
    jsonable_encoder's way."""

    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except TypeError:
            text = json.dumps(jsonable_encoder(content), ensure_ascii=False, allow_nan=False,
                              separators=(",", ":"))  # fmt: skip
        return text.encode("utf-8")


def list_response(
    request: Request,
    app: AppState,
    ctx: RequestContext,
    stmt: Select[Any],
    spec: ListSpec,
    to_dict: Callable[[Any], dict[str, Any]],
    project_column: Any = None,
) -> PlainJSONResponse:
    """A list call: project scoping (unless admin), Octavia's query conventions, links."""
    ctx.require_read()
    if project_column is not None and not ctx.is_admin:
        stmt = stmt.where(project_column == ctx.project_id)
    with app.db.session(writer=False) as session:  # a read: never SQLite's write lock
        rows, links = paginate(
            session, stmt, spec, request.query_params, request.url, app.config.pagination_max_limit
        )
        items = [select_fields(to_dict(row), request.query_params) for row in rows]
    return PlainJSONResponse({spec.plural: items, f"{spec.plural}_links": links})


def commit_or_conflict(
    app: AppState, work: Callable[[Session], dict[str, Any]], message: str, field: str
) -> dict[str, Any]:
    """Run work in a transaction; a unique constraint violation becomes a 409 naming field."""
    try:
        with app.db.session() as session:
            return work(session)
    except IntegrityError:
        raise conflict(message, field) from None


@dataclass(frozen=True)
class ReadRoutes:
    """The list and show calls of a resource, which every resource makes the same way: project
    scoping (admin resources: admins only), 404 for what the caller may not see, Octavia's
    query conventions (filters, sorting, pagination, fields)."""

    path: str  # the collection, e.g. /v2/lbaas/pools
    id_param: str  # the path parameter naming one object, e.g. pool_id
    model: type[Base]
    key: str  # the object's key in a show answer, e.g. pool
    kind: str  # the object's name in errors, e.g. Pool
    spec: ListSpec
    to_dict: Callable[[Any], dict[str, Any]]
    tag: str
    admin_only: bool = False
    query: Callable[[], Select[Any]] | None = None  # default: every object not DELETED

    def add_to(self, router: APIRouter) -> None:
        def list_objects(
            request: Request,
            app: AppState = Depends(state),
            ctx: RequestContext = Depends(get_context),
        ) -> PlainJSONResponse:
            if self.admin_only:
                ctx.require_admin()
            project = getattr(self.model, "project_id", None)  # admin resources have none
            return list_response(request, app, ctx, self._query(), self.spec, self.to_dict, project)

        def show_object(
            request: Request,
            object_id: str = Path(alias=self.id_param),
            app: AppState = Depends(state),
            ctx: RequestContext = Depends(get_context),
        ) -> PlainJSONResponse:
            if self.admin_only:
                ctx.require_admin()
            else:
                ctx.require_read()
            with app.db.session(writer=False) as session:
                obj = get_owned(session, self.model, object_id, ctx, self.kind)
                shown = {self.key: select_fields(self.to_dict(obj), request.query_params)}
            return PlainJSONResponse(shown)

        router.add_api_route(
            self.path,
            list_objects,
            methods=["GET"],
            tags=[self.tag],
            name=f"list_{self._name}s",
            response_class=PlainJSONResponse,
        )
        router.add_api_route(
            f"{self.path}/{{{self.id_param}}}",
            show_object,
            methods=["GET"],
            tags=[self.tag],
            name=f"show_{self._name}",
            response_class=PlainJSONResponse,
        )

    @property
    def _name(self) -> str:
        """The routes' names (and so OpenAPI operation ids): show_load_balancer, ..."""
        return self.kind.lower().replace(" ", "_")

    def _query(self) -> Select[Any]:
        if self.query is not None:
            return self.query()
        stmt = select(self.model)
        status = getattr(self.model, "provisioning_status", None)
        return stmt if status is None else stmt.where(status != c.DELETED)
