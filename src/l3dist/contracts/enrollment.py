"""Enrolling an amphora host: the agent on a pre-provisioned host (VM or bare metal) joins the
controller's pool with a one-time token.

The agent makes its private key and a certificate signing request on the host; the controller's
CA signs it (the key never leaves the host) and answers with the host's id, its certificate
(named by the host id, which the controller checks on every call) and the CA that signs the
controller's client certificate. ``POST /v2/octavia/amphora-hosts/enroll`` on the REST API.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

ENROLL_PATH = "/v2/octavia/amphora-hosts/enroll"
TOKEN_BYTES = 32  # secrets.token_urlsafe(TOKEN_BYTES): ~43 characters


def _text(value: object) -> object:
    """An address as text (JSON) or already parsed; never a number or a boolean."""
    if not isinstance(value, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise ValueError("an IP address, as a string")
    return value


def _unicast(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        raise ValueError(f"{address} is not an address the controller can reach")
    if address.is_link_local:
        raise ValueError(f"{address} is link-local: give a routable management address")
    return address


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, Field(min_length=16, max_length=128)]
    csr_pem: Annotated[str, Field(min_length=64, max_length=16384)]
    # Where the controller reaches the agent (its management address) and on which port: a
    # unicast address (not unspecified, loopback, multicast or link-local), given as a string.
    management_address: Annotated[
        ipaddress.IPv4Address | ipaddress.IPv6Address, BeforeValidator(_text)
    ]
    agent_port: Annotated[int, Field(ge=1, le=65535, strict=True)] = 9443
    hostname: Annotated[str, Field(min_length=1, max_length=255)]

    _reachable = field_validator("management_address")(_unicast)


class EnrollResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host_id: str
    certificate_pem: str  # the host's server certificate, named by host_id
    ca_pem: str  # the CA whose client certificates (the controller's) the agent accepts
