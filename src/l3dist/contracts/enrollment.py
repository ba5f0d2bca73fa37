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

from pydantic import BaseModel, ConfigDict, Field

ENROLL_PATH = "/v2/octavia/amphora-hosts/enroll"
TOKEN_BYTES = 32  # secrets.token_urlsafe(TOKEN_BYTES): ~43 characters


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, Field(min_length=16, max_length=128)]
    csr_pem: Annotated[str, Field(min_length=64, max_length=16384)]
    # Where the controller reaches the agent (its management address) and on which port.
    management_address: ipaddress.IPv4Address | ipaddress.IPv6Address
    agent_port: Annotated[int, Field(ge=1, le=65535)] = 9443
    hostname: Annotated[str, Field(min_length=1, max_length=255)]


class EnrollResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host_id: str
    certificate_pem: str  # the host's server certificate, named by host_id
    ca_pem: str  # the CA whose client certificates (the controller's) the agent accepts
