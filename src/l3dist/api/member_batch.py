"""``PUT /v2/lbaas/pools/{pool_id}/members``: Octavia's batch update of a pool's members.

The body is the pool's whole wanted member list: a listed member that the pool has (by ``id``
when given, else by address and port) is updated, one it lacks is created, and a member the
list leaves out is deleted (unless ``additive_only``). All of it is one change of the load
balancer (one lock, one job): a member-by-member replay would meet its own lock (409) on the
second call, which is why Octavia's provider driver (l3dist_octavia) uses this call.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from l3dist.api.children import mark
from l3dist.api.common import AppState, Body, commit_or_conflict, get_context, state
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request
from l3dist.api.pools import (
    MemberCreate,
    apply_member_update,
    check_member_address,
    get_pool,
    new_member,
)
from l3dist.common import constants as c
from l3dist.db.models import Member

router = APIRouter()


class BatchRequest(Body):
    members: list[MemberCreate] = Field(max_length=1000)


@router.put("/v2/lbaas/pools/{pool_id}/members", status_code=202, tags=["members"])
def batch_update_members(
    pool_id: str,
    body: BatchRequest,
    additive_only: bool = False,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> Response:
    ctx.require_write()
    seen: set[tuple[str, int]] = set()
    for index, req in enumerate(body.members):
        key = (check_member_address(app, req), req.protocol_port)
        if key in seen:
            raise bad_request(
                f"members.{index}: {key[0]}:{key[1]} is listed twice", f"members.{index}.address"
            )
        seen.add(key)

    def work(session: Any) -> dict[str, Any]:
        pool = get_pool(session, pool_id, ctx)
        live = [m for m in pool.members if m.provisioning_status != c.DELETED]
        by_id = {m.id: m for m in live}
        by_address = {(m.ip_address, m.protocol_port): m for m in live}
        kept: set[str] = set()
        created: list[Member] = []
        for req in body.members:
            found = by_id.get(str(req.id)) if req.id else None
            found = found or by_address.get((str(req.address), req.protocol_port))
            if found is not None:
                apply_member_update(found, req)
                found.provisioning_status = c.PENDING_UPDATE
                kept.add(found.id)
            else:
                created.append(new_member(session, pool, req, ctx))
        mark(pool, pool.load_balancer_id, session, c.PENDING_UPDATE)
        for member in live:
            if member.id not in kept and not additive_only:
                member.provisioning_status = c.PENDING_DELETE
        for member in created:
            member.provisioning_status = c.PENDING_CREATE
            session.add(member)
        session.flush()
        return {}

    commit_or_conflict(app, work, "a listed member conflicts with another", "members")
    return Response(status_code=202)
