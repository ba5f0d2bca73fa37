"""Octavia's fully populated load balancer create: listeners (each with its default pool),
pools, their members and health monitors in the create body, made in the load balancer's own
transaction and built by its one create flow.

Why: one object per request means one flow per object (about a second each on the lab), so a
load balancer with a listener, a pool and two members carried traffic only after five flows.
Made together, the create flow pushes HAProxy's whole configuration once and announces the VIP
as soon as the amphorae are configured.

Invariants: every object is checked before anything is written and a refusal names the field
by its place in the body (``listeners.0.default_pool.members.1.address``); every object is
PENDING_CREATE until the create flow settles it with the load balancer (ACTIVE, or ERROR with
it); ids chosen by the caller are unique in the body and in the database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from l3dist.api.common import AppState
from l3dist.api.context import RequestContext
from l3dist.api.errors import ApiError, bad_request
from l3dist.api.healthmonitors import MonitorBody, new_monitor
from l3dist.api.healthmonitors import to_dict as monitor_dict
from l3dist.api.listeners import ListenerBody, new_listener
from l3dist.api.listeners import to_dict as listener_dict
from l3dist.api.pools import (
    MemberCreate,
    PoolBody,
    check_member_address,
    member_dict,
    new_member,
    new_pool,
    pool_dict,
)
from l3dist.common import constants as c
from l3dist.db.models import LoadBalancer, Pool

MAX_CHILDREN = 100  # listeners, or pools, in one create body
MAX_MEMBERS = 1000  # members of one pool in one create body


class PopulatedPool(PoolBody):
    members: list[MemberCreate] = Field(default_factory=list, max_length=MAX_MEMBERS)
    healthmonitor: MonitorBody | None = None


class PopulatedListener(ListenerBody):
    default_pool: PopulatedPool | None = None


@contextlib.contextmanager
def located(place: str) -> Iterator[None]:
    """A refusal raised inside names its field by its place in the body."""
    try:
        yield
    except ApiError as error:
        field = f"{place}.{error.field}" if error.field else place
        raise ApiError(error.status, f"{place}: {error.message}", field) from None


def _pools(
    listeners: list[PopulatedListener], pools: list[PopulatedPool]
) -> Iterator[tuple[str, PopulatedPool]]:
    for i, listener in enumerate(listeners):
        if listener.default_pool is not None:
            yield f"listeners.{i}.default_pool", listener.default_pool
    for i, pool in enumerate(pools):
        yield f"pools.{i}", pool


def check_graph(
    app: AppState, listeners: list[PopulatedListener], pools: list[PopulatedPool]
) -> None:
    """What can be checked before the database is touched: 400 naming the field."""
    if len(listeners) > MAX_CHILDREN or len(pools) > MAX_CHILDREN:
        field = "listeners" if len(listeners) > MAX_CHILDREN else "pools"
        raise bad_request(f"{field}: at most {MAX_CHILDREN} in one create", field)
    ports: dict[int, int] = {}
    for i, listener in enumerate(listeners):
        if listener.default_pool_id is not None:
            raise bad_request(
                f"listeners.{i}.default_pool_id: a new load balancer has no pools yet; "
                "give the pool itself as default_pool",
                f"listeners.{i}.default_pool_id",
            )
        if listener.protocol_port in ports:
            raise bad_request(
                f"listeners.{i}.protocol_port {listener.protocol_port} is also "
                f"listeners.{ports[listener.protocol_port]}'s",
                f"listeners.{i}.protocol_port",
            )
        ports[listener.protocol_port] = i
        pool = listener.default_pool
        if pool and pool.protocol not in c.VALID_LISTENER_POOL_PROTOCOLS[listener.protocol]:
            raise bad_request(
                f"listeners.{i}.default_pool.protocol: a {listener.protocol} listener cannot "
                f"use a {pool.protocol} pool",
                f"listeners.{i}.default_pool.protocol",
            )
    ids: dict[str, str] = {}

    def unique(place: str, object_id: Any) -> None:
        if object_id is None:
            return
        if str(object_id) in ids:
            raise bad_request(
                f"{place}.id {object_id} is also {ids[str(object_id)]}'s", f"{place}.id"
            )
        ids[str(object_id)] = place

    for i, listener in enumerate(listeners):
        unique(f"listeners.{i}", listener.id)
    for place, pool in _pools(listeners, pools):
        unique(place, pool.id)
        if pool.healthmonitor is not None:
            unique(f"{place}.healthmonitor", pool.healthmonitor.id)
        endpoints: dict[tuple[str, int], int] = {}
        for j, member in enumerate(pool.members):
            unique(f"{place}.members.{j}", member.id)
            with located(f"{place}.members.{j}"):
                address = check_member_address(app, member)
            endpoint = (address, member.protocol_port)
            if endpoint in endpoints:
                raise bad_request(
                    f"{place}.members.{j}: {address}:{member.protocol_port} is also "
                    f"{place}.members.{endpoints[endpoint]}'s",
                    f"{place}.members.{j}.address",
                )
            endpoints[endpoint] = j


def add_graph(
    session: Any,
    lb: LoadBalancer,
    listeners: list[PopulatedListener],
    pools: list[PopulatedPool],
    ctx: RequestContext,
) -> None:
    """The body's objects under lb (flushed, in lb's transaction), all PENDING_CREATE."""
    for i, body in enumerate(listeners):
        with located(f"listeners.{i}"):
            listener = new_listener(session, lb, body, ctx)
        session.add(listener)
        session.flush()
        if body.default_pool is not None:
            pool = _add_pool(session, lb, body.default_pool, f"listeners.{i}.default_pool", ctx)
            listener.default_pool_id = pool.id
    for i, body_pool in enumerate(pools):
        _add_pool(session, lb, body_pool, f"pools.{i}", ctx)
    session.flush()


def _add_pool(
    session: Any, lb: LoadBalancer, body: PopulatedPool, place: str, ctx: RequestContext
) -> Pool:
    with located(place):
        pool = new_pool(session, lb, body, ctx)
    session.add(pool)
    session.flush()
    for j, member_body in enumerate(body.members):
        with located(f"{place}.members.{j}"):
            member = new_member(session, pool, member_body, ctx)
        member.provisioning_status = c.PENDING_CREATE
        session.add(member)
    if body.healthmonitor is not None:
        with located(f"{place}.healthmonitor"):
            session.add(new_monitor(session, pool, body.healthmonitor, ctx))
    session.flush()
    return pool


def graph_dict(lb: LoadBalancer) -> dict[str, Any]:
    """The created objects in full, as Octavia answers a fully populated create: listeners,
    and pools with their members and health monitor."""
    pools = []
    for pool in lb.pools:
        entry = pool_dict(pool)
        entry["members"] = [member_dict(m) for m in pool.members]
        monitor = pool.health_monitor
        entry["healthmonitor"] = monitor_dict(monitor) if monitor is not None else None
        pools.append(entry)
    return {"listeners": [listener_dict(li) for li in lb.listeners], "pools": pools}
