"""What listeners, pools, members and health monitors share: Octavia's status rules.

A change to a child object locks its load balancer (ACTIVE/ERROR -> PENDING_UPDATE, else 409),
marks the object PENDING_CREATE / PENDING_UPDATE / PENDING_DELETE and leaves the rest to the
controller worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError

from l3dist.api.common import AppState, lock_load_balancer, timestamp
from l3dist.api.context import RequestContext
from l3dist.api.errors import conflict
from l3dist.api.query import ListSpec, paginate, select_fields
from l3dist.db.models import ProvisionedMixin


def base_fields(obj: ProvisionedMixin) -> dict[str, Any]:
    return {
        "id": obj.id,
        "name": obj.name or "",
        "description": obj.description or "",
        "admin_state_up": obj.enabled,
        "project_id": obj.project_id,
        "tenant_id": obj.project_id,
        "provisioning_status": obj.provisioning_status,
        "operating_status": obj.operating_status,
        "created_at": timestamp(obj.created_at),
        "updated_at": timestamp(obj.updated_at),
        "tags": obj.tags or [],
    }


def apply_common_update(obj: ProvisionedMixin, req: Any) -> None:
    for name in ("name", "description", "tags"):
        value = getattr(req, name, None)
        if value is not None:
            setattr(obj, name, value)
    if getattr(req, "admin_state_up", None) is not None:
        obj.enabled = req.admin_state_up


def mark(obj: ProvisionedMixin, lb_id: str, session: Any, status: str) -> None:
    lock_load_balancer(session, lb_id)
    obj.provisioning_status = status


def list_children(
    request: Request,
    app: AppState,
    ctx: RequestContext,
    stmt: Select[Any],
    spec: ListSpec,
    project_column: Any,
    to_dict: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    ctx.require_read()
    if not ctx.is_admin:
        stmt = stmt.where(project_column == ctx.project_id)
    with app.db.session() as session:
        rows, links = paginate(
            session, stmt, spec, request.query_params, request.url, app.config.pagination_max_limit
        )
        items = [select_fields(to_dict(row), request.query_params) for row in rows]
    return {spec.plural: items, f"{spec.plural}_links": links}


def commit_or_conflict(
    app: AppState, work: Callable[[Any], dict[str, Any]], message: str, field: str
) -> dict[str, Any]:
    """Run work in a transaction; a unique constraint violation becomes a 409 naming field."""
    try:
        with app.db.session() as session:
            return work(session)
    except IntegrityError:
        raise conflict(message, field) from None
