"""The agent's configuration on an amphora host: ``/etc/l3dist/agent.toml``.

It says only what belongs to the host; everything about the amphora the host will run (its id,
BGP speakers and peers, heartbeat targets, anycast prefixes) comes later from the controller
through the agent API. Every key, with its default:

.. code-block:: toml

    controller_url = "https://l3dist-api.example.net:9876"  # the REST API (enrollment)
    hostname = "lb-host-07"            # default: the host's name
    bind_port = 9443                   # the agent API (mutual TLS)
    state_dir = "/var/lib/l3dist-agent"
    tls_dir = "/etc/l3dist/agent-tls"  # key.pem (made here, 0600), cert.pem, ca.pem, host.json
    haproxy_namespace = "amphora-haproxy"

    [management]                       # lb-mgmt-net: the agent API, BGP, heartbeats
    interface = "ens3"
    addresses = ["10.0.0.17/24", "fd00:0:0:1::17/64"]  # the first is where the API listens

    [frontend]                         # the provider network the fabric routes VIPs to
    parent_interface = "ens4"          # fe0 is made off it (macvlan) inside haproxy_namespace
"""

from __future__ import annotations

import ipaddress
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PATH = Path("/etc/l3dist/agent.toml")
IfName = Annotated[str, Field(min_length=1, max_length=15, pattern=r"^[A-Za-z0-9_.@-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostManagement(_Strict):
    interface: IfName
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = Field(
        min_length=1, max_length=4
    )

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Where the controller reaches the agent (the first address)."""
        return self.addresses[0].ip


class HostFrontend(_Strict):
    parent_interface: IfName
    mode: Literal["macvlan"] = "macvlan"


class HostAgentConfig(_Strict):
    controller_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/.*)?$")]
    hostname: Annotated[str, Field(min_length=1, max_length=255)] = Field(
        default_factory=socket.gethostname
    )
    bind_port: Annotated[int, Field(ge=1, le=65535)] = 9443
    state_dir: Path = Path("/var/lib/l3dist-agent")
    tls_dir: Path = Path("/etc/l3dist/agent-tls")
    haproxy_namespace: IfName = "amphora-haproxy"
    management: HostManagement
    frontend: HostFrontend

    @property
    def key_path(self) -> Path:
        return self.tls_dir / "key.pem"

    @property
    def cert_path(self) -> Path:
        return self.tls_dir / "cert.pem"

    @property
    def ca_path(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def identity_path(self) -> Path:
        return self.tls_dir / "host.json"


def load(path: Path = DEFAULT_PATH) -> HostAgentConfig:
    return HostAgentConfig.model_validate(tomllib.loads(path.read_text()))
