"""The amphora agent's config drive: written once at amphora creation, read at every agent start.

Field names follow the spec's data model (``distributor_l3_bgp_speaker``,
``distributor_l3_bgp_peer``) so the controller can fill them straight from its tables.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    field_serializer,
    model_validator,
)

from l3dist.common.bgp_rules import peer_profile_errors
from l3dist.common.files import write_atomic

ASN = Annotated[int, Field(ge=1, le=4294967295)]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BgpPeerProfile(StrictModel):
    """A BGP peer profile (the spec's distributor_l3_bgp_peer)."""

    id: str = Field(min_length=1, max_length=36)
    peer_ip: IPAddress
    remote_as: ASN
    auth_type: Literal["none", "md5"] | None = None
    password: SecretStr | None = None
    ttl_hops: Annotated[int, Field(ge=1, le=254)] | None = None
    hold_time: Annotated[int, Field(ge=0, le=65535)] | None = None
    keepalive_interval: Annotated[int, Field(ge=0, le=65535)] | None = None
    bfd_enabled: bool = False
    bfd_transmit_interval_ms: Annotated[int, Field(ge=10, le=60000)] = 100
    bfd_receive_interval_ms: Annotated[int, Field(ge=10, le=60000)] = 100
    bfd_detect_multiplier: Annotated[int, Field(ge=2, le=255)] = 3

    @field_serializer("password")
    def _reveal_only_on_request(
        self, value: SecretStr | None, info: SerializationInfo
    ) -> str | None:
        """Passwords stay masked unless the caller asks for secrets (config drive writing)."""
        if value is None:
            return None
        context = info.context or {}
        return value.get_secret_value() if context.get("secrets") else "***"

    @model_validator(mode="after")
    def _consistent(self) -> BgpPeerProfile:
        password = self.password.get_secret_value() if self.password else None
        errors = peer_profile_errors(
            self.auth_type, password, self.hold_time, self.keepalive_interval
        )
        if errors:
            raise ValueError(errors[0][1])
        return self

    @property
    def ip_version(self) -> int:
        return self.peer_ip.version

    @property
    def md5_password(self) -> str | None:
        return (
            self.password.get_secret_value() if self.password and self.auth_type == "md5" else None
        )


class BgpSpeakerConfig(StrictModel):
    """A BGP speaker (the spec's distributor_l3_bgp_speaker) with its registered peers."""

    id: str = Field(min_length=1, max_length=36)
    ip_version: Literal[4, 6]
    local_as: ASN
    peers: list[BgpPeerProfile] = Field(default_factory=list)

    @model_validator(mode="after")
    def _peers_match_version(self) -> BgpSpeakerConfig:
        for peer in self.peers:
            if peer.ip_version != self.ip_version:
                raise ValueError(
                    f"peer {peer.id}: peer_ip {peer.peer_ip} is not IPv{self.ip_version}"
                )
        return self


class NexthopBfd(StrictModel):
    """BFD from the speaker to each next hop it announces (a dedicated distributor watching
    its load-balancer amphorae): a next hop whose session is not Up is not announced. The next
    hops must be on a subnet the speaker's host is plugged into (single-hop BFD)."""

    transmit_interval_ms: Annotated[int, Field(ge=10, le=60000)] = 50
    receive_interval_ms: Annotated[int, Field(ge=10, le=60000)] = 50
    detect_multiplier: Annotated[int, Field(ge=2, le=255)] = 3


class BgpConfig(StrictModel):
    # An entry point of l3dist.speaker_drivers (bird and exabgp ship with l3dist).
    driver: str = Field(default="bird", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    router_id: ipaddress.IPv4Address
    speakers: list[BgpSpeakerConfig] = Field(default_factory=list)
    # BGP ADD-PATH (RFC 7911), send: every next hop of a VIP is announced to a peer, each its
    # own path (a dedicated distributor's many load-balancer amphorae over one session). A peer
    # that does not negotiate it gets one next hop per VIP (the spec's model): the status says.
    add_path: bool = False
    # None: next hops are announced while registered (each amphora is its own next hop).
    nexthop_bfd: NexthopBfd | None = None

    def peers(self) -> list[tuple[BgpSpeakerConfig, BgpPeerProfile]]:
        return [(s, p) for s in self.speakers for p in s.peers]

    def peer(self, peer_id: str) -> BgpPeerProfile | None:
        return next((p for _, p in self.peers() if p.id == peer_id), None)


class InterfaceConfig(StrictModel):
    """An amphora interface: its name and its addresses with prefix length.

    For the front end both lists may be empty: the port is then plugged after boot and the
    agent reads its addresses and gateways from the kernel (an amphora host's agent fills them
    in from ``PUT /1.0/plug/frontend``)."""

    name: str = Field(min_length=1, max_length=15)
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = Field(default_factory=list)
    gateways: list[IPAddress] = Field(default_factory=list)

    def address(self, version: int) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface | None:
        return next((a for a in self.addresses if a.version == version), None)


class TlsConfig(StrictModel):
    """The agent's side of mutual TLS: the CA whose clients it accepts (the controller's) and
    its own certificate and key (server.pem), both files of the config drive."""

    client_ca: Path
    server_pem: Path  # the certificate, and its key too unless server_key names another file
    server_key: Path | None = None


class HeartbeatConfig(StrictModel):
    """Where and how often to send signed heartbeats (the health managers, host:port)."""

    controllers: list[Annotated[str, Field(pattern=r"^\[?[0-9A-Fa-f.:]+\]?:[0-9]{1,5}$")]]
    key: SecretStr
    interval: Annotated[float, Field(gt=0, le=60)] = 1.0

    @field_serializer("key")
    def _reveal_only_on_request(self, value: SecretStr, info: SerializationInfo) -> str:
        context = info.context or {}
        return value.get_secret_value() if context.get("secrets") else "***"


class ListenerCheckConfig(StrictModel):
    """The agent's own check of its listeners (HAProxy serving): every interval, a check that
    takes longer than timeout fails; fall failures in a row withdraw the VIP routes, rise
    successes in a row announce them again (one failure among several successes does nothing)."""

    interval: Annotated[float, Field(gt=0, le=10)] = 0.05
    timeout: Annotated[float, Field(gt=0, le=10)] = 0.5
    rise: Annotated[int, Field(ge=1, le=100)] = 3
    fall: Annotated[int, Field(ge=1, le=100)] = 2


# What an amphora does (the spec's amphora.service_type): a load-balancing amphora runs
# HAProxy with the VIP on loopback, and announces itself when it has speakers (the combined
# mode); a dedicated distributor runs only the speakers, announcing the load-balancing
# amphorae's front ends (ADD-PATH), and holds no VIP.
ServiceType = Literal["loadbalancer", "distributor"]


class AgentConfig(StrictModel):
    """Everything the agent needs to know about its amphora."""

    amphora_id: str = Field(min_length=1, max_length=36)
    service_type: ServiceType = "loadbalancer"
    management: InterfaceConfig
    frontend: InterfaceConfig = Field(default_factory=lambda: InterfaceConfig(name="fe0"))
    haproxy_namespace: str = "amphora-haproxy"
    bind_port: int = 9443
    state_dir: Path
    bgp: BgpConfig
    tls: TlsConfig
    heartbeat: HeartbeatConfig | None = None
    listener_check: ListenerCheckConfig = Field(default_factory=ListenerCheckConfig)
    # The pools this amphora may announce host routes inside (route safety, issue 14): the
    # CIDRs of the network driver's anycast subnets, filled by the controller side, never by
    # an API caller. The agent refuses any VIP outside them and the speaker's own export
    # policy carries the same list. Empty: this amphora announces nothing.
    anycast_prefixes: list[IPNetwork] = Field(default_factory=list)
    # Fencing (amphora hosts): withdraw everything for good after a freeze or a loss of every
    # BGP session this long (the health manager's heartbeat timeout). None: no fencing (an
    # amphora the compute driver really deletes).
    fence_after: Annotated[float, Field(gt=0, le=3600)] | None = None
    # The enrolled host this amphora runs on (in its heartbeats), None for a booted amphora.
    host_id: str | None = Field(default=None, min_length=1, max_length=36)

    @property
    def bind_host(self) -> str:
        address = self.management.address(4) or self.management.addresses[0]
        return str(address.ip)


def load(path: Path) -> AgentConfig:
    return AgentConfig.model_validate(json.loads(path.read_text()))


def dump(config: AgentConfig, path: Path) -> None:
    """Write a config drive file (0600: it holds BGP passwords)."""
    data = config.model_dump(mode="json", context={"secrets": True})
    write_atomic(path, json.dumps(data, indent=2))
