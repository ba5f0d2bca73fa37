"""``l3dist-agent enroll``: join the controller's amphora host pool with a one-time token.

The private key is made here and never leaves the host: only a certificate signing request
goes to the controller, whose CA signs it. What comes back (the host's certificate, named by
its host id, and the CA that signs the controller's client certificate) is written next to the
key. A refusal (used, expired or unknown token) leaves nothing but the key.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from l3dist.common.files import write_atomic
from l3dist.contracts.enrollment import ENROLL_PATH, EnrollRequest, EnrollResponse
from l3dist.contracts.host_config import HostAgentConfig


class EnrollmentRefused(RuntimeError):
    """The controller said no (its message), or could not be reached."""


def host_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The host's private key: made once (EC P-256, mode 0600 from the start), then reused."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem.decode(), mode=0o600)
    return key


def signing_request(key: ec.EllipticCurvePrivateKey, hostname: str) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def enroll(config: HostAgentConfig, token: str, timeout: float = 30.0) -> EnrollResponse:
    """Enroll this host; on success its certificate, the CA and its host id are on disk."""
    key = host_key(config.key_path)
    request = EnrollRequest(
        token=token,
        csr_pem=signing_request(key, config.hostname),
        management_address=config.management.address,
        agent_port=config.bind_port,
        hostname=config.hostname,
    )
    url = config.controller_url.rstrip("/") + ENROLL_PATH
    try:
        response = httpx.post(url, json=request.model_dump(mode="json"), timeout=timeout)
    except httpx.HTTPError as exc:
        raise EnrollmentRefused(f"cannot reach the controller at {url}: {exc}") from exc
    if response.status_code != 201:
        try:
            message = response.json().get("faultstring") or response.text
        except ValueError:
            message = response.text
        raise EnrollmentRefused(f"enrollment refused ({response.status_code}): {message}")
    answer = EnrollResponse.model_validate(response.json())
    install(config, key, answer)
    return answer


def install(
    config: HostAgentConfig, key: ec.EllipticCurvePrivateKey, answer: EnrollResponse
) -> None:
    """Keep what the controller's CA signed, after checking it is for this host's key: the
    certificate, the CA and the host id (what ``l3dist-agent run`` needs)."""
    certificate = x509.load_pem_x509_certificate(answer.certificate_pem.encode())
    if certificate.public_key() != key.public_key():
        raise EnrollmentRefused("the controller's certificate is not for this host's key")
    write_atomic(config.ca_path, answer.ca_pem, mode=0o644)
    write_atomic(config.cert_path, answer.certificate_pem, mode=0o644)
    write_atomic(config.identity_path, json.dumps({"host_id": answer.host_id}), mode=0o644)
