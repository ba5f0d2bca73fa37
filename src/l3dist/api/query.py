"""Octavia's list conventions: ``limit``/``marker``/``page_reverse`` keyset pagination with
``<plural>_links``, ``sort=key:dir,...`` (or ``sort_key``/``sort_dir``), ``fields``, and equality
filters on any listed field (repeat a filter to match any of several values).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, and_, false, func, literal, or_
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from starlette.datastructures import URL, QueryParams

from l3dist.api.errors import bad_request

RESERVED = {"limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir", "fields"}
EPOCH = datetime.datetime(1970, 1, 1)


def parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


@dataclass
class ListSpec:
    """What a resource exposes to list queries: API field -> SQL expression."""

    plural: str
    id_column: Any  # a mapped column
    columns: dict[str, Any]  # API field -> mapped column or SQL expression
    converters: dict[str, Callable[[str], Any]] = field(default_factory=dict)
    default_sort: Sequence[tuple[str, str]] = (("created_at", "asc"),)


def _sortable(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    """NULL-free version of a sort column, so keyset comparisons never meet NULL."""
    if getattr(expr, "nullable", True) is False or getattr(expr, "primary_key", False):
        return expr  # never NULL: keep the bare column so indexes stay usable
    python_type: Any = None
    try:
        python_type = expr.type.python_type
    except NotImplementedError:
        return expr
    if python_type is str:
        return func.coalesce(expr, literal(""))
    if python_type is bool:
        return func.coalesce(expr, literal(False))
    if python_type in (int, float):
        return func.coalesce(expr, literal(-1))
    if python_type is datetime.datetime:
        return func.coalesce(expr, literal(EPOCH))
    return expr


def _sort_keys(spec: ListSpec, params: QueryParams) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    if "sort" in params:
        for part in params["sort"].split(","):
            name, _, direction = part.strip().partition(":")
            keys.append((name, direction or "asc"))
    elif "sort_key" in params:
        directions = params.getlist("sort_dir")
        for i, name in enumerate(params.getlist("sort_key")):
            keys.append((name, directions[i] if i < len(directions) else "asc"))
    else:
        keys = list(spec.default_sort)
    for name, direction in keys:
        if name not in spec.columns:
            raise bad_request(f"sort: {name} is not a sortable field of {spec.plural}", "sort")
        if direction not in ("asc", "desc"):
            raise bad_request(f"sort: direction {direction!r} must be asc or desc", "sort")
    if "id" not in {name for name, _ in keys}:
        keys.append(("id", "asc"))
    return keys


def _filters(spec: ListSpec, params: QueryParams) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for key in params:
        if key in RESERVED:
            continue
        if key not in spec.columns:
            raise bad_request(f"{key} is not a field {spec.plural} can be filtered by", key)
        convert = spec.converters.get(key, str)
        try:
            values = [convert(v) for v in params.getlist(key)]
        except ValueError as exc:
            raise bad_request(f"{key}: {exc}", key) from exc
        column = spec.columns[key]
        conditions.append(column == values[0] if len(values) == 1 else column.in_(values))
    return conditions


def paginate(
    session: Session,
    stmt: Select[Any],
    spec: ListSpec,
    params: QueryParams,
    url: URL,
    max_limit: int,
) -> tuple[list[Any], list[dict[str, str]]]:
    """Run a list query with filters, sorting and keyset pagination; return rows and links."""
    try:
        limit = int(params.get("limit", max_limit))
    except ValueError:
        raise bad_request("limit must be an integer", "limit") from None
    if limit < 1:
        raise bad_request("limit must be 1 or more", "limit")
    limit = min(limit, max_limit)
    try:
        page_reverse = parse_bool(params.get("page_reverse", "false"))
    except ValueError as exc:
        raise bad_request(f"page_reverse: {exc}", "page_reverse") from exc
    keys = _sort_keys(spec, params)
    stmt = stmt.where(*_filters(spec, params))

    ascending = [(d == "asc") != page_reverse for _, d in keys]
    exprs = [_sortable(spec.columns[name]) for name, _ in keys]
    marker = params.get("marker")
    if marker:
        marker_values = session.execute(
            stmt.with_only_columns(*exprs).where(spec.id_column == marker)
        ).first()
        if marker_values is None:
            raise bad_request(f"marker {marker} is not an object of this list", "marker")
        after: ColumnElement[bool] = false()
        for i, expr in enumerate(exprs):
            ties = [exprs[j] == marker_values[j] for j in range(i)]
            step = expr > marker_values[i] if ascending[i] else expr < marker_values[i]
            after = or_(after, and_(*ties, step))
        stmt = stmt.where(after)
    stmt = stmt.order_by(
        *(e.asc() if up else e.desc() for e, up in zip(exprs, ascending, strict=True))
    )
    rows = list(session.scalars(stmt.limit(limit + 1)).unique())
    has_more = len(rows) > limit
    rows = rows[:limit]
    if page_reverse:
        rows.reverse()

    links: list[dict[str, str]] = []
    base = [(k, v) for k, v in params.multi_items() if k not in ("marker", "page_reverse", "limit")]
    base_url = str(url.replace(query=""))

    def link(rel: str, marker_id: str, reverse: bool) -> dict[str, str]:
        query = [*base, ("limit", str(limit)), ("marker", marker_id)]
        if reverse:
            query.append(("page_reverse", "True"))
        return {"href": f"{base_url}?{urlencode(query)}", "rel": rel}

    if rows:
        more_forward = has_more if not page_reverse else bool(marker)
        more_backward = bool(marker) if not page_reverse else has_more
        if more_forward:
            links.append(link("next", rows[-1].id, False))
        if more_backward:
            links.append(link("previous", rows[0].id, True))
    return rows, links


def select_fields(item: dict[str, Any], params: QueryParams) -> dict[str, Any]:
    wanted = params.getlist("fields")
    if not wanted:
        return item
    unknown = [f for f in wanted if f not in item]
    if unknown:
        raise bad_request(f"fields: unknown field {unknown[0]}", "fields")
    return {k: v for k, v in item.items() if k in wanted}
