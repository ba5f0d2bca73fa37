"""Admin resources: ``/v2/lbaas/distributors``, ``/v2/lbaas/bgpspeakers``, ``/v2/lbaas/bgppeers``.

BGP peer passwords are write-only: stored for the amphorae's config drives, never returned.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import Field, SecretStr, StrictBool, StrictInt
from sqlalchemy import select
from sqlalchemy.orm import Session

from l3dist.api.common import (
    AppState,
    Body,
    ReadRoutes,
    commit_or_conflict,
    get_context,
    get_owned,
    state,
    timestamp,
)
from l3dist.api.context import RequestContext
from l3dist.api.errors import bad_request, conflict, not_found
from l3dist.api.fields import Id, Name
from l3dist.api.query import ListSpec, parse_bool
from l3dist.common import constants as c
from l3dist.common.bgp_rules import peer_profile_errors
from l3dist.db import jobs
from l3dist.db.models import (
    Amphora,
    AmphoraBgpSpeakerRegistration,
    AmphoraVipRegistration,
    BgpPeer,
    BgpPeerRegistration,
    BgpSpeaker,
    Distributor,
    LoadBalancer,
    Vip,
    VipRoute,
)
from l3dist.distributor import l3_bgp_config
from l3dist.network.exceptions import SubnetNotFound

router = APIRouter()

ASN = Annotated[StrictInt, Field(ge=1, le=4294967295)]


# -- distributors ---------------------------------------------------------------------------


class DistributorFields(Body):
    name: Name | None = None
    description: Name | None = None
    frontend_subnet: Id | None = None
    config_data: dict[str, Any] | None = None


class DistributorCreate(DistributorFields):
    distributor_type: Literal["L3_BGP"]


class DistributorCreateRequest(Body):
    distributor: DistributorCreate


class DistributorUpdateRequest(Body):
    distributor: DistributorFields


DISTRIBUTOR_SPEC = ListSpec(
    plural="distributors",
    id_column=Distributor.id,
    columns={
        "id": Distributor.id,
        "name": Distributor.name,
        "description": Distributor.description,
        "distributor_type": Distributor.distributor_type,
        "status": Distributor.status,
        "frontend_subnet": Distributor.frontend_subnet,
        "created_at": Distributor.created_at,
        "updated_at": Distributor.updated_at,
    },
)


def distributor_dict(d: Distributor) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name or "",
        "description": d.description or "",
        "distributor_type": d.distributor_type,
        "status": d.status,
        "frontend_subnet": d.frontend_subnet,
        "config_data": d.config_data or {},
        "created_at": timestamp(d.created_at),
        "updated_at": timestamp(d.updated_at),
    }


def _check_distributor(app: AppState, session: Session, req: DistributorFields) -> Any:
    if req.frontend_subnet is not None:
        try:
            app.network.get_subnet(req.frontend_subnet)
        except SubnetNotFound:
            raise not_found("Subnet", req.frontend_subnet, "frontend_subnet") from None
    if req.config_data is None:
        return None
    try:
        return l3_bgp_config.validate(session, req.config_data)
    except l3_bgp_config.ConfigError as exc:
        raise bad_request(str(exc), exc.field) from None


@router.post("/v2/lbaas/distributors", status_code=201, tags=["distributors"])
def create_distributor(
    body: DistributorCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    req = body.distributor

    def work(session: Session) -> dict[str, Any]:
        config = _check_distributor(app, session, req)
        distributor = Distributor(
            name=req.name,
            description=req.description,
            distributor_type=req.distributor_type,
            status=c.PENDING_CREATE,
            frontend_subnet=req.frontend_subnet,
            config_data=config if config is not None else {"bgp_speaker_ids": []},
        )
        session.add(distributor)
        session.flush()
        jobs.submit(session, jobs.CREATE_DISTRIBUTOR, distributor.id)
        return {"distributor": distributor_dict(distributor)}

    return commit_or_conflict(app, work, f"A distributor named {req.name!r} already exists", "name")


ReadRoutes(
    path="/v2/lbaas/distributors",
    id_param="distributor_id",
    model=Distributor,
    key="distributor",
    kind="Distributor",
    spec=DISTRIBUTOR_SPEC,
    to_dict=distributor_dict,
    tag="distributors",
    admin_only=True,
).add_to(router)


@router.get("/v2/lbaas/distributors/{distributor_id}/status", tags=["distributors"])
def distributor_status(
    distributor_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> dict[str, Any]:
    """The distributor's status and what it distributes: load balancers and their next hops."""
    ctx.require_admin()
    with app.db.session() as session:
        d = get_owned(session, Distributor, distributor_id, ctx, "Distributor")
        lbs = session.scalars(
            select(LoadBalancer)
            .join(Vip, Vip.load_balancer_id == LoadBalancer.id)
            .where(Vip.distributor_id == d.id, LoadBalancer.provisioning_status != c.DELETED)
        ).all()
        entries = []
        for lb in lbs:
            registrations = session.scalars(
                select(AmphoraVipRegistration).where(
                    AmphoraVipRegistration.load_balancer_id == lb.id
                )
            ).all()
            entries.append(
                {
                    "id": lb.id,
                    "vip_address": lb.vip.ip_address if lb.vip else None,
                    "provisioning_status": lb.provisioning_status,
                    "operating_status": lb.operating_status,
                    "nexthops": [
                        {
                            "amphora_id": r.amphora_id,
                            "nexthop_ip": r.nexthop_ip,
                            "bgp_peer_id": r.distributor_l3_bgp_peer_id,
                        }
                        for r in registrations
                    ],
                }
            )
        return {
            "distributor": {
                "id": d.id,
                "status": d.status,
                "status_reason": jobs.last_failure(session, d.id) if d.status == c.ERROR else None,
                "loadbalancers": entries,
            }
        }


def _keep_fixed(d: Distributor, config: dict[str, Any]) -> None:
    """A distributor's mode, and a dedicated one's BFD to its next hops, stay what they were
    made with (409 naming the key): changing them would rebuild every distributor amphora
    under its load balancers (make another distributor instead). Its amphora count may
    change: the worker builds or removes distributor amphorae."""
    for key, value in (
        ("mode", l3_bgp_config.mode),
        ("nexthop_bfd", l3_bgp_config.nexthop_bfd),
    ):
        if value(config) != value(d.config_data):
            raise conflict(
                f"config_data.{key} is fixed once the distributor exists "
                f"({value(d.config_data)}): create another distributor",
                f"config_data.{key}",
            )


@router.put("/v2/lbaas/distributors/{distributor_id}", tags=["distributors"])
def update_distributor(
    distributor_id: str,
    body: DistributorUpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    req = body.distributor

    def work(session: Session) -> dict[str, Any]:
        d = get_owned(session, Distributor, distributor_id, ctx, "Distributor")
        config = _check_distributor(app, session, req)
        for name in ("name", "description", "frontend_subnet"):
            value = getattr(req, name)
            if value is not None:
                setattr(d, name, value)
        # A new configuration is checked again; so is the same one of an ERROR distributor
        # (the operator fixed what its driver refused: a speaker's missing peer).
        if config is not None:
            _keep_fixed(d, config)
        if config is not None and (config != d.config_data or d.status == c.ERROR):
            _recheck(session, d, "config_data")
            d.config_data = config
        session.flush()
        return {"distributor": distributor_dict(d)}

    return commit_or_conflict(app, work, f"A distributor named {req.name!r} already exists", "name")


@router.delete("/v2/lbaas/distributors/{distributor_id}", status_code=204, tags=["distributors"])
def delete_distributor(
    distributor_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_admin()
    with app.db.session() as session:
        d = get_owned(session, Distributor, distributor_id, ctx, "Distributor")
        user = session.scalar(
            select(LoadBalancer.id)
            .join(Vip, Vip.load_balancer_id == LoadBalancer.id)
            .where(Vip.distributor_id == d.id, LoadBalancer.provisioning_status != c.DELETED)
        )
        if user:
            raise conflict(f"Distributor {d.id} is in use by load balancer {user}", "id")
        route = session.scalar(select(VipRoute.id).where(VipRoute.distributor_id == d.id).limit(1))
        if route:
            raise conflict(f"Distributor {d.id} still routes VIPs: delete VIP route {route} "
                           "first", "id")  # fmt: skip
        if l3_bgp_config.mode(d.config_data) == l3_bgp_config.DEDICATED:
            # Its amphorae run on hosts of the pool: the worker deletes them, then the row.
            if d.status in (c.PENDING_CREATE, c.PENDING_UPDATE, c.PENDING_DELETE):
                raise conflict(f"Distributor {d.id} is {d.status}", "status")
            d.status = c.PENDING_DELETE
            jobs.submit(session, jobs.DELETE_DISTRIBUTOR, d.id)
        else:
            session.delete(d)
    return Response(status_code=204)


# -- BGP peers ------------------------------------------------------------------------------


BfdInterval = Annotated[StrictInt, Field(ge=c.BFD_INTERVAL_MIN_MS, le=c.BFD_INTERVAL_MAX_MS)]
BFD_FIELDS = (
    "bfd_enabled",
    "bfd_transmit_interval_ms",
    "bfd_receive_interval_ms",
    "bfd_detect_multiplier",
)


class PeerFields(Body):
    name: Name | None = None
    remote_as: ASN | None = None
    auth_type: Literal["none", "md5"] | None = None
    password: Annotated[SecretStr, Field(min_length=1, max_length=80)] | None = None
    ttl_hops: Annotated[StrictInt, Field(ge=1, le=254)] | None = None
    hold_time: Annotated[StrictInt, Field(ge=0, le=65535)] | None = None
    keepalive_interval: Annotated[StrictInt, Field(ge=0, le=65535)] | None = None
    bfd_enabled: StrictBool | None = None
    bfd_transmit_interval_ms: BfdInterval | None = None
    bfd_receive_interval_ms: BfdInterval | None = None
    bfd_detect_multiplier: (
        Annotated[StrictInt, Field(ge=c.BFD_MULTIPLIER_MIN, le=c.BFD_MULTIPLIER_MAX)] | None
    ) = None


class PeerCreate(PeerFields):
    peer_ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    remote_as: ASN


class PeerCreateRequest(Body):
    bgp_peer: PeerCreate


class PeerUpdateRequest(Body):
    bgp_peer: PeerFields


PEER_SPEC = ListSpec(
    plural="bgp_peers",
    id_column=BgpPeer.id,
    columns={
        "id": BgpPeer.id,
        "name": BgpPeer.name,
        "peer_ip": BgpPeer.peer_ip,
        "remote_as": BgpPeer.remote_as,
        "auth_type": BgpPeer.auth_type,
        "bfd_enabled": BgpPeer.bfd_enabled,
        "created_at": BgpPeer.created_at,
        "updated_at": BgpPeer.updated_at,
    },
    converters={"remote_as": int, "bfd_enabled": parse_bool},
)


def peer_dict(p: BgpPeer) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name or "",
        "peer_ip": p.peer_ip,
        "remote_as": p.remote_as,
        "auth_type": p.auth_type or c.AUTH_NONE,
        "ttl_hops": p.ttl_hops,
        "hold_time": p.hold_time,
        "keepalive_interval": p.keepalive_interval,
        "bfd_enabled": bool(p.bfd_enabled),
        "bfd_transmit_interval_ms": p.bfd_transmit_interval_ms,
        "bfd_receive_interval_ms": p.bfd_receive_interval_ms,
        "bfd_detect_multiplier": p.bfd_detect_multiplier,
        "created_at": timestamp(p.created_at),
        "updated_at": timestamp(p.updated_at),
    }


def _check_peer(peer: BgpPeer) -> None:
    errors = peer_profile_errors(
        peer.auth_type, peer.password, peer.hold_time, peer.keepalive_interval
    )
    if errors:
        field, message = errors[0]
        raise bad_request(message, field)


@router.post("/v2/lbaas/bgppeers", status_code=201, tags=["bgp"])
def create_bgp_peer(
    body: PeerCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    req = body.bgp_peer
    peer = BgpPeer(
        name=req.name,
        peer_ip=str(req.peer_ip),
        remote_as=req.remote_as,
        auth_type=req.auth_type or c.AUTH_NONE,
        password=req.password.get_secret_value() if req.password else None,
        ttl_hops=req.ttl_hops,
        hold_time=req.hold_time,
        keepalive_interval=req.keepalive_interval,
        **{name: getattr(req, name) for name in BFD_FIELDS if getattr(req, name) is not None},
    )
    _check_peer(peer)

    def work(session: Session) -> dict[str, Any]:
        session.add(peer)
        session.flush()
        return {"bgp_peer": peer_dict(peer)}

    return commit_or_conflict(app, work, f"A BGP peer named {req.name!r} already exists", "name")


ReadRoutes(
    path="/v2/lbaas/bgppeers",
    id_param="peer_id",
    model=BgpPeer,
    key="bgp_peer",
    kind="BGP peer",
    spec=PEER_SPEC,
    to_dict=peer_dict,
    tag="bgp",
    admin_only=True,
).add_to(router)


def _settings(peer: BgpPeer) -> tuple[Any, ...]:
    return tuple(getattr(peer, name) for name in (
        "remote_as", "ttl_hops", "hold_time", "keepalive_interval", "auth_type", "password",
        *BFD_FIELDS))  # fmt: skip


def _recheck(session: Session, d: Distributor, field: str) -> None:
    """The distributor through the worker again (PENDING_UPDATE and an update_distributor job:
    checked, and its amphorae brought up to date one at a time). 409 naming field while it,
    or a load balancer using it, is pending (an amphora being built then may have read the
    old settings)."""
    if d.status in c.PENDING_STATUSES:
        raise conflict(f"distributor {d.id} is {d.status}: wait until it is ACTIVE or ERROR",
                       field)  # fmt: skip
    busy = session.scalar(
        select(LoadBalancer.id)
        .join(Vip, Vip.load_balancer_id == LoadBalancer.id)
        .where(Vip.distributor_id == d.id,
               LoadBalancer.provisioning_status.in_(c.PENDING_STATUSES))
        .limit(1)
    )  # fmt: skip
    if busy is not None:
        raise conflict(f"load balancer {busy} on distributor {d.id} is being changed: wait "
                       "until it is ACTIVE or ERROR", field)  # fmt: skip
    route = session.scalar(
        select(VipRoute.id)
        .where(VipRoute.distributor_id == d.id,
               VipRoute.provisioning_status.in_(c.PENDING_STATUSES))
        .limit(1)
    )  # fmt: skip
    if route is not None:
        raise conflict(f"VIP route {route} on distributor {d.id} is being changed: wait until "
                       "it is ACTIVE or ERROR", field)  # fmt: skip
    d.status = c.PENDING_UPDATE
    jobs.submit(session, jobs.UPDATE_DISTRIBUTOR, d.id)


def _roll_distributors(session: Session, speaker_ids: set[str], field: str) -> list[str]:
    """The distributors whose speakers changed (a speaker, its peers or a peer profile), each
    through the worker again (``_recheck``); the whole change is refused if one cannot be.
    Their ids."""
    rolled = []
    for d in session.scalars(select(Distributor).order_by(Distributor.id)):
        if speaker_ids & set(l3_bgp_config.speakers_in_use(d.config_data)):
            _recheck(session, d, field)
            rolled.append(d.id)
    return rolled


@router.put("/v2/lbaas/bgppeers/{peer_id}", tags=["bgp"])
def update_bgp_peer(
    peer_id: str,
    body: PeerUpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    req = body.bgp_peer

    def work(session: Session) -> dict[str, Any]:
        peer = get_owned(session, BgpPeer, peer_id, ctx, "BGP peer")
        before = _settings(peer)
        for name in (
            "name",
            "remote_as",
            "ttl_hops",
            "hold_time",
            "keepalive_interval",
            *BFD_FIELDS,
        ):
            value = getattr(req, name)
            if value is not None:
                setattr(peer, name, value)
        if req.auth_type is not None:
            peer.auth_type = req.auth_type
            if req.auth_type == c.AUTH_NONE:
                peer.password = None
        if req.password is not None:
            peer.password = req.password.get_secret_value()
        _check_peer(peer)
        if _settings(peer) != before:  # what a speaker runs with (not the name)
            users = session.scalars(
                select(BgpSpeaker.id).where(BgpSpeaker.peers.any(BgpPeer.id == peer.id))
            )
            _roll_distributors(session, set(users), "id")
        session.flush()
        return {"bgp_peer": peer_dict(peer)}

    return commit_or_conflict(app, work, f"A BGP peer named {req.name!r} already exists", "name")


def _route_naming(session: Session, peer_id: str, speaker_id: str | None = None) -> str | None:
    """A VIP route that names the peer (on a distributor that uses speaker_id, when given):
    its amphorae would be left announcing to a peer they no longer have."""
    for route in session.scalars(
        select(VipRoute).where(VipRoute.distributor_l3_bgp_peer_id == peer_id)
    ):
        d = session.get(Distributor, route.distributor_id)
        if speaker_id is None or (
            d is not None and speaker_id in l3_bgp_config.speakers_in_use(d.config_data)
        ):
            return route.id
    return None


@router.delete("/v2/lbaas/bgppeers/{peer_id}", status_code=204, tags=["bgp"])
def delete_bgp_peer(
    peer_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_admin()
    with app.db.session() as session:
        peer = get_owned(session, BgpPeer, peer_id, ctx, "BGP peer")
        speaker = session.scalar(
            select(BgpPeerRegistration.distributor_l3_bgp_speaker_id).where(
                BgpPeerRegistration.distributor_l3_bgp_peer_id == peer.id
            )
        )
        if speaker:
            raise conflict(f"BGP peer {peer.id} is in use by BGP speaker {speaker}", "id")
        in_use = session.scalar(
            select(AmphoraVipRegistration.amphora_id).where(
                AmphoraVipRegistration.distributor_l3_bgp_peer_id == peer.id
            )
        )
        if in_use:
            raise conflict(f"BGP peer {peer.id} announces VIPs of amphora {in_use}", "id")
        route = _route_naming(session, peer.id)
        if route:
            raise conflict(f"BGP peer {peer.id} is named by VIP route {route}", "id")
        session.delete(peer)
    return Response(status_code=204)


# -- BGP speakers ---------------------------------------------------------------------------


class SpeakerCreate(Body):
    name: Name | None = None
    ip_version: Literal[4, 6]
    local_as: ASN


class SpeakerUpdate(Body):
    name: Name | None = None
    local_as: ASN | None = None


class SpeakerCreateRequest(Body):
    bgp_speaker: SpeakerCreate


class SpeakerUpdateRequest(Body):
    bgp_speaker: SpeakerUpdate


class PeerRef(Body):
    bgp_peer_id: Id


SPEAKER_SPEC = ListSpec(
    plural="bgp_speakers",
    id_column=BgpSpeaker.id,
    columns={
        "id": BgpSpeaker.id,
        "name": BgpSpeaker.name,
        "ip_version": BgpSpeaker.ip_version,
        "local_as": BgpSpeaker.local_as,
        "created_at": BgpSpeaker.created_at,
        "updated_at": BgpSpeaker.updated_at,
    },
    converters={"ip_version": int, "local_as": int},
)


def speaker_dict(s: BgpSpeaker) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name or "",
        "ip_version": s.ip_version,
        "local_as": s.local_as,
        "peers": [p.id for p in s.peers],
        "created_at": timestamp(s.created_at),
        "updated_at": timestamp(s.updated_at),
    }


@router.post("/v2/lbaas/bgpspeakers", status_code=201, tags=["bgp"])
def create_bgp_speaker(
    body: SpeakerCreateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    req = body.bgp_speaker

    def work(session: Session) -> dict[str, Any]:
        speaker = BgpSpeaker(name=req.name, ip_version=req.ip_version, local_as=req.local_as)
        session.add(speaker)
        session.flush()
        return {"bgp_speaker": speaker_dict(speaker)}

    return commit_or_conflict(app, work, f"A BGP speaker named {req.name!r} already exists", "name")


ReadRoutes(
    path="/v2/lbaas/bgpspeakers",
    id_param="speaker_id",
    model=BgpSpeaker,
    key="bgp_speaker",
    kind="BGP speaker",
    spec=SPEAKER_SPEC,
    to_dict=speaker_dict,
    tag="bgp",
    admin_only=True,
).add_to(router)


@router.put("/v2/lbaas/bgpspeakers/{speaker_id}", tags=["bgp"])
def update_bgp_speaker(
    speaker_id: str,
    body: SpeakerUpdateRequest,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    req = body.bgp_speaker

    def work(session: Session) -> dict[str, Any]:
        speaker = get_owned(session, BgpSpeaker, speaker_id, ctx, "BGP speaker")
        if req.name is not None:
            speaker.name = req.name
        if req.local_as is not None and req.local_as != speaker.local_as:
            speaker.local_as = req.local_as
            _roll_distributors(session, {speaker.id}, "local_as")
        session.flush()
        return {"bgp_speaker": speaker_dict(speaker)}

    return commit_or_conflict(app, work, f"A BGP speaker named {req.name!r} already exists", "name")


def _speaker_in_use(session: Session, speaker: BgpSpeaker) -> str | None:
    amphora = session.scalar(
        select(AmphoraBgpSpeakerRegistration.amphora_id)
        .join(Amphora, Amphora.id == AmphoraBgpSpeakerRegistration.amphora_id)
        .where(
            AmphoraBgpSpeakerRegistration.distributor_l3_bgp_speaker_id == speaker.id,
            Amphora.status != c.DELETED,  # a deleted amphora runs nothing
        )
    )
    if amphora:
        return f"amphora {amphora}"
    for d in session.scalars(select(Distributor)):
        if speaker.id in l3_bgp_config.speakers_in_use(d.config_data):
            return f"distributor {d.id}"
    return None


@router.delete("/v2/lbaas/bgpspeakers/{speaker_id}", status_code=204, tags=["bgp"])
def delete_bgp_speaker(
    speaker_id: str, app: AppState = Depends(state), ctx: RequestContext = Depends(get_context)
) -> Response:
    ctx.require_admin()
    with app.db.session() as session:
        speaker = get_owned(session, BgpSpeaker, speaker_id, ctx, "BGP speaker")
        user = _speaker_in_use(session, speaker)
        if user:
            raise conflict(f"BGP speaker {speaker.id} is in use by {user}", "id")
        session.delete(speaker)
    return Response(status_code=204)


@router.put("/v2/lbaas/bgpspeakers/{speaker_id}/add_bgp_peer", tags=["bgp"])
def add_bgp_peer(
    speaker_id: str,
    body: PeerRef,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    with app.db.session() as session:
        speaker = get_owned(session, BgpSpeaker, speaker_id, ctx, "BGP speaker")
        peer = get_owned(session, BgpPeer, body.bgp_peer_id, ctx, "BGP peer", "bgp_peer_id")
        version = ipaddress.ip_address(peer.peer_ip).version
        if version != speaker.ip_version:
            raise bad_request(
                f"bgp_peer_id {peer.id} is an IPv{version} peer but the speaker is "
                f"IPv{speaker.ip_version}",
                "bgp_peer_id",
            )
        if peer in speaker.peers:
            raise conflict(f"BGP peer {peer.id} is already on speaker {speaker.id}", "bgp_peer_id")
        speaker.peers.append(peer)
        _roll_distributors(session, {speaker.id}, "bgp_peer_id")
        session.flush()
        return {"bgp_speaker": speaker_dict(speaker)}


@router.put("/v2/lbaas/bgpspeakers/{speaker_id}/remove_bgp_peer", tags=["bgp"])
def remove_bgp_peer(
    speaker_id: str,
    body: PeerRef,
    app: AppState = Depends(state),
    ctx: RequestContext = Depends(get_context),
) -> dict[str, Any]:
    ctx.require_admin()
    with app.db.session() as session:
        speaker = get_owned(session, BgpSpeaker, speaker_id, ctx, "BGP speaker")
        peer = next((p for p in speaker.peers if p.id == body.bgp_peer_id), None)
        if peer is None:
            raise not_found(
                "BGP peer", f"{body.bgp_peer_id} on speaker {speaker.id}", "bgp_peer_id"
            )
        route = _route_naming(session, peer.id, speaker.id)
        if route:
            raise conflict(f"BGP peer {peer.id} is named by VIP route {route}: delete the "
                           "route first", "bgp_peer_id")  # fmt: skip
        speaker.peers.remove(peer)
        _roll_distributors(session, {speaker.id}, "bgp_peer_id")
        session.flush()
        return {"bgp_speaker": speaker_dict(speaker)}
