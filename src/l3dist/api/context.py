"""Who is calling: project and roles, from headers (no-auth mode) or a bearer token.

Roles (Octavia's names and the plain ones): admin / load-balancer_admin see and change
everything, including admin-only resources; member / load-balancer_member change their own
project's objects; reader / observer / load-balancer_observer only read them.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import select

from l3dist.api.errors import ApiError, forbidden
from l3dist.common.config import ApiConfig
from l3dist.db.models import ApiToken, utcnow
from l3dist.db.session import Database

ADMIN_ROLES = {"admin", "load-balancer_admin"}
WRITE_ROLES = ADMIN_ROLES | {"member", "load-balancer_member", "_member_"}
READ_ROLES = WRITE_ROLES | {
    "reader",
    "observer",
    "load-balancer_observer",
    "load-balancer_global_observer",
}


@dataclass(frozen=True)
class RequestContext:
    project_id: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return bool(self.roles & ADMIN_ROLES)

    @property
    def can_write(self) -> bool:
        return bool(self.roles & WRITE_ROLES)

    @property
    def can_read(self) -> bool:
        return bool(self.roles & READ_ROLES)

    def require_read(self) -> None:
        if not self.can_read:
            raise forbidden()

    def require_write(self) -> None:
        if not self.can_write:
            raise forbidden()

    def require_admin(self) -> None:
        if not self.is_admin:
            raise forbidden()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def context_from_request(request: Request, config: ApiConfig, db: Database) -> RequestContext:
    if config.auth_strategy == "noauth":
        project = request.headers.get("x-project-id") or config.noauth_default_project
        roles_header = request.headers.get("x-roles")
        roles = (
            {r.strip() for r in roles_header.split(",") if r.strip()}
            if roles_header is not None
            else set(config.noauth_default_roles)
        )
        return RequestContext(project, frozenset(roles))
    token = request.headers.get("x-auth-token")
    authorization = request.headers.get("authorization", "")
    if not token and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        raise ApiError(401, "Authentication required: send a bearer token.")
    with db.session(writer=False) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token)))
        if row is None or (row.expires_at is not None and row.expires_at < utcnow()):
            raise ApiError(401, "The token is not valid.")
        return RequestContext(row.project_id, frozenset(row.roles))


def token_expiry(days: int | None) -> datetime.datetime | None:
    return utcnow() + datetime.timedelta(days=days) if days else None
