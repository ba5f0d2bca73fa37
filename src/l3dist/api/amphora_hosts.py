"""``/v2/octavia/amphora-hosts`` (admin): the pool of pre-provisioned hosts the ``hosts``
compute driver runs amphorae on, and their enrollment.

An operator adds a host (``POST``): the answer carries a one-time enrollment token, valid for
``token_ttl`` seconds and shown only once (the database keeps its hash). On the host, the agent
makes its key and a certificate signing request and enrolls with the token
(``POST .../enroll``, the token is the credential): the controller's CA signs the request, the
host becomes AVAILABLE with the management address it gave. A used, expired or unknown token is
refused (403, the message says which) and nothing is recorded.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import secrets
from typing import Annotated, Any

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, Response
from pydantic import Field, StrictBool, StrictInt
from sqlalchemy import select
from sqlalchemy.orm import Session

from l3dist.api.common import (
    AppState,
    Body,
    ReadRoutes,
    commit_or_conflict,
    get_context,
    state,
    timestamp,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import ApiError, bad_request, conflict, not_found
from l3dist.api.query import ListSpec
from l3dist.contracts.enrollment import TOKEN_BYTES, EnrollRequest, EnrollResponse
from l3dist.db import hosts, jobs
from l3dist.db.models import AmphoraHost, utcnow

router = APIRouter()
PATH = "/v2/octavia/amphora-hosts"

LIST_SPEC = ListSpec(
    plural="amphora_hosts",
    id_column=AmphoraHost.id,
    columns={
        "id": AmphoraHost.id,
        "name": AmphoraHost.name,
        "status": AmphoraHost.status,
        "enabled": AmphoraHost.enabled,
        "management_address": AmphoraHost.management_address,
        "amphora_id": AmphoraHost.amphora_id,
        "created_at": AmphoraHost.created_at,
        "updated_at": AmphoraHost.updated_at,
    },
)


def to_dict(host: AmphoraHost) -> dict[str, Any]:
    return {
        "id": host.id,
        "name": host.name,
        "status": host.status,
        "enabled": host.enabled,
        "hostname": host.hostname,
        "management_address": host.management_address,
        "agent_port": host.agent_port,
        "amphora_id": host.amphora_id,
        "token_expires_at": timestamp(host.token_expires_at) if not host.enrolled_at else None,
        "enrolled_at": timestamp(host.enrolled_at),
        "created_at": timestamp(host.created_at),
        "updated_at": timestamp(host.updated_at),
    }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


Name = Annotated[str, Field(min_length=1, max_length=255)]


class HostCreate(Body):
    name: Name
    # How long the enrollment token is valid, in seconds (default one hour, at most a week).
    token_ttl: Annotated[StrictInt, Field(ge=60, le=604800)] = 3600
    enabled: StrictBool = True


class HostCreateRequest(Body):
    amphora_host: HostCreate


class HostUpdate(Body):
    name: Name | None = None
    enabled: StrictBool | None = None


class HostUpdateRequest(Body):
    amphora_host: HostUpdate


@router.post(PATH, status_code=201, tags=["amphora-hosts"])
def create_host(
    body: HostCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    """A host waiting for enrollment, and its one-time token (shown only here)."""
    ctx.require_admin()
    req = body.amphora_host
    token = secrets.token_urlsafe(TOKEN_BYTES)

    def work(session: Any) -> dict[str, Any]:
        host = AmphoraHost(
            name=req.name,
            status=hosts.PENDING_ENROLLMENT,
            enabled=req.enabled,
            token_hash=token_hash(token),
            token_expires_at=utcnow() + datetime.timedelta(seconds=req.token_ttl),
        )
        session.add(host)
        session.flush()
        return {"amphora_host": to_dict(host), "enrollment_token": token}

    return commit_or_conflict(app, work, f"an amphora host named {req.name!r} exists", "name")


ReadRoutes(
    path=PATH,
    id_param="host_id",
    model=AmphoraHost,
    key="amphora_host",
    kind="Amphora host",
    spec=LIST_SPEC,
    to_dict=to_dict,
    tag="amphora-hosts",
    admin_only=True,
    query=lambda: select(AmphoraHost),
).add_to(router)


@router.put(PATH + "/{host_id}", tags=["amphora-hosts"])
def update_host(
    host_id: str,
    body: HostUpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    """Rename, or disable (no new amphora is placed on it; one it holds stays) / enable."""
    ctx.require_admin()
    req = body.amphora_host

    def work(session: Any) -> dict[str, Any]:
        host = session.get(AmphoraHost, host_id)
        if host is None:
            raise not_found("Amphora host", host_id)
        if req.name is not None:
            host.name = req.name
        if req.enabled is not None:
            host.enabled = req.enabled
        session.flush()
        return {"amphora_host": to_dict(host)}

    return commit_or_conflict(app, work, f"an amphora host named {req.name!r} exists", "name")


def _idle_host(session: Session, host_id: str) -> AmphoraHost:
    """The host, locked, if it holds no amphora (404 unknown; 409 it holds one)."""
    host = session.get(AmphoraHost, host_id, with_for_update=True)
    if host is None:
        raise not_found("Amphora host", host_id)
    if host.status == hosts.ALLOCATED or host.amphora_id is not None:
        raise conflict(
            f"amphora host {host_id} holds amphora {host.amphora_id}: fail it over first",
            "amphora_id",
        )
    return host


@router.put(PATH + "/{host_id}/reset", status_code=202, tags=["amphora-hosts"])
def reset_host(
    host_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    """Reset a host that holds no amphora and offer it again if its agent answers clean (an
    UNREACHABLE host back after maintenance; the health manager also tries them on its own
    every ``unreachable_host_retry_interval``). One that holds an amphora, or is not
    enrolled yet, is refused (409) and nothing is queued."""
    ctx.require_admin()
    with app.db.session() as session:
        host = _idle_host(session, host_id)
        if host.status == hosts.PENDING_ENROLLMENT:
            raise conflict(f"amphora host {host_id} is not enrolled yet", "status")
        jobs.submit_once(session, jobs.RESET_HOST, host_id)
        return {"amphora_host": to_dict(host)}


@router.delete(PATH + "/{host_id}", status_code=204, tags=["amphora-hosts"])
def delete_host(
    host_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    """Forget a host; one that holds an amphora is refused (fail the amphora over first)."""
    ctx.require_admin()
    with app.db.session() as session:
        session.delete(_idle_host(session, host_id))
    return Response(status_code=204)


def _refused(message: str) -> ApiError:
    return ApiError(403, message, "token")


@router.post(PATH + "/enroll", status_code=201, tags=["amphora-hosts"])
def enroll_host(body: EnrollRequest, app: AppState = Depends(state)) -> dict[str, Any]:
    """The agent's enrollment: its token (the only credential) and its key's signing request;
    the answer is its certificate and the CA to trust. The token is checked, used and the
    host recorded in one transaction: a refusal records nothing."""
    if app.ca is None:
        raise ApiError(503, "this API has no certificate authority configured")
    address = str(ipaddress.ip_address(body.management_address))
    with app.db.session() as session:
        wanted = token_hash(body.token)
        host = session.scalar(
            select(AmphoraHost).where(AmphoraHost.token_hash == wanted).with_for_update()
        )
        if host is None or not hmac.compare_digest(host.token_hash or "", wanted):
            raise _refused("enrollment token is not known")
        if host.enrolled_at is not None:
            raise _refused(f"enrollment token was already used (host {host.id})")
        expires = host.token_expires_at
        if expires is None or expires <= utcnow():
            raise _refused(f"enrollment token expired at {timestamp(expires)}")
        other = session.scalar(
            select(AmphoraHost.id).where(
                AmphoraHost.management_address == address, AmphoraHost.id != host.id
            )
        )
        if other is not None:
            raise conflict(
                f"management_address {address} is already the address of host {other}",
                "management_address",
            )
        try:
            certificate = app.ca.sign_host(body.csr_pem.encode(), host.id)
        except ValueError as exc:
            raise bad_request(str(exc), "csr_pem") from None
        host.status = hosts.AVAILABLE
        host.hostname = body.hostname
        host.management_address = address
        host.agent_port = body.agent_port
        host.enrolled_at = utcnow()
        host.certificate_serial = format(certificate.serial_number, "x")
        answer = EnrollResponse(
            host_id=host.id,
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
            ca_pem=app.ca.ca_pem.decode(),
        )
    return answer.model_dump()
