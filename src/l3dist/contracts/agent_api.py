"""The amphora agent API's request bodies and constants (``https://<management ip>:9443/1.0``).

The agent validates requests with these models; the controller's client sends what they accept.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from l3dist.contracts.agent_config import (
    BgpConfig,
    BgpSpeakerConfig,
    HeartbeatConfig,
    ListenerCheckConfig,
    NexthopBfd,
    ServiceType,
)

AGENT_PORT = 9443
# HAProxy adds this response header with the amphora's id (which amphora answered).
AMPHORA_HEADER = "X-L3dist-Amphora"
# HAProxy's connection limit per amphora (maxconn, about two file descriptors per
# connection); conntrack is sized from it.
MAX_CONNECTIONS = 8000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AmphoraId = Annotated[str, Field(min_length=1, max_length=36)]
PeerId = Annotated[str, Field(min_length=1, max_length=36)]
LoadBalancerId = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[0-9a-zA-Z-]+$")]


class RegisterAmphora(BaseModel):
    """Register Amphora: announce vip_ip with next hop nexthop_ip (to peer_id, or all peers)."""

    model_config = ConfigDict(extra="forbid")
    amphora_id: AmphoraId
    vip_ip: IPAddress
    nexthop_ip: IPAddress
    peer_id: PeerId | None = None


MacAddress = Annotated[str, Field(pattern=r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$")]


class FlowRescueBody(BaseModel):
    """The cluster's other amphorae (front-end addresses) and, optionally, the router MACs
    whose packets may be copied to them (default: the front-end gateways' MACs)."""

    model_config = ConfigDict(extra="forbid")
    peers: list[IPAddress] = Field(max_length=64)
    router_macs: list[MacAddress] = Field(default_factory=list, max_length=16)


class RegisterVip(BaseModel):
    """Register VIP: announce vip_ip with next hop nexthop_ip, an endpoint that is not an
    amphora (to peer_id, or all peers of the VIP's family)."""

    model_config = ConfigDict(extra="forbid")
    vip_ip: IPAddress
    nexthop_ip: IPAddress
    peer_id: PeerId | None = None


MAX_VIP_ROUTES_PER_UPDATE = 10000


class VipRoutesUpdate(BaseModel):
    """``PATCH /1.0/distributor/vips``: Register VIP and Unregister VIP for many routes in one
    request, checked entry by entry as the single calls are, then one state write and one
    speaker change (registering N routes one by one costs N of each). All or nothing: the
    first refusal names its entry (``add[3].nexthop_ip``) and changes nothing.
    Idempotent: a route already registered, or one not registered, is skipped."""

    model_config = ConfigDict(extra="forbid")
    add: list[RegisterVip] = Field(default_factory=list, max_length=MAX_VIP_ROUTES_PER_UPDATE)
    remove: list[RegisterVip] = Field(default_factory=list, max_length=MAX_VIP_ROUTES_PER_UPDATE)


class DrainAmphora(BaseModel):
    """Drain Amphora: stop new flows for vip_ip via nexthop_ip; established ones finish."""

    model_config = ConfigDict(extra="forbid")
    vip_ip: IPAddress
    nexthop_ip: IPAddress
    peer_id: PeerId | None = None


# -- host mode: an enrolled amphora host, given its amphora by the hosts compute driver --------

AMPHORA_PATH = "/1.0/amphora"  # PUT: become this amphora; GET: what this host is; DELETE: reset
FRONTEND_PATH = "/1.0/plug/frontend"  # PUT: make the reserved front-end port real
FENCE_PATH = "/1.0/fence"  # GET: why the amphora is fenced (or null); DELETE: clear it
BGP_PATH = "/1.0/bgp"  # PUT: new speakers and peer profiles (a distributor's change)
BFD_PATH = "/1.0/bfd"  # PUT: the distributors whose BFD sessions to its front end it answers


class SpeakersUpdate(BaseModel):
    """``PUT /1.0/bgp``: the amphora's BGP speakers and their peers as the distributor now has
    them (passwords included). The same set again is a no-op; a change restarts the speaker
    with it (its sessions re-established with the new settings, the same routes announced).
    Refused (409 ``peer_id``) while a registration names a peer the new set no longer has."""

    model_config = ConfigDict(extra="forbid")
    speakers: list[BgpSpeakerConfig] = Field(min_length=1, max_length=4)


class BfdPeers(BaseModel):
    """``PUT /1.0/bfd`` on a load-balancing amphora of a dedicated distributor: answer BFD from
    these distributor amphorae (their front-end addresses) on the front end, with these timers.
    The distributors announce this amphora's front end only while its session is Up, and the
    amphora stops answering while its listeners are down, so a soft failure withdraws too.
    An empty list stops answering altogether."""

    model_config = ConfigDict(extra="forbid")
    peers: list[IPAddress] = Field(max_length=16)
    timers: NexthopBfd = Field(default_factory=NexthopBfd)


class AmphoraAssignment(BaseModel):
    """``PUT /1.0/amphora``: what an idle host becomes (the hosts compute driver's build).

    The same assignment again is a no-op (a resumed flow repeats it); another amphora_id while
    one is assigned is refused with 409 (the controller resets a host before reusing it)."""

    model_config = ConfigDict(extra="forbid")
    amphora_id: AmphoraId
    service_type: ServiceType = "loadbalancer"
    bgp: BgpConfig  # speaker driver, router id, speakers and their peers (passwords included)
    anycast_prefixes: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    heartbeat: HeartbeatConfig | None = None
    listener_check: ListenerCheckConfig = Field(default_factory=ListenerCheckConfig)
    # The agent fences itself after a freeze or a loss of every BGP session this long (the
    # health manager's heartbeat timeout): see l3dist.amphora_agent.fencing.
    fence_after: Annotated[float, Field(gt=0, le=3600)] | None = None


class FrontendPlug(BaseModel):
    """``PUT /1.0/plug/frontend``: the front-end port the network driver reserved, made real by
    the agent: ``fe0`` off the host's front-end interface (macvlan, the port's MAC) in the
    amphora-haproxy namespace, with the port's addresses (the first: the next hop) and a
    default route to each gateway. The same port again is a no-op."""

    model_config = ConfigDict(extra="forbid")
    mac_address: MacAddress
    mtu: Annotated[int, Field(ge=576, le=9216)] = 1500
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = Field(
        min_length=1, max_length=8
    )
    gateways: list[IPAddress] = Field(default_factory=list, max_length=8)
