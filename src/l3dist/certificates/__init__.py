"""The controller's local certificate authority, for mutual TLS with the amphora agents (as
Octavia's local cert generator): created on first use, it issues each amphora's server
certificate (named by the amphora id) and the controller's client certificate.

Keys are EC P-256 (fast to make: one per amphora build). Every private key file is mode 0600 in
a 0700 directory; the CA key never leaves the controller.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from l3dist.common.files import write_atomic

CA_VALIDITY = datetime.timedelta(days=3650)
CERT_VALIDITY = datetime.timedelta(days=730)
RENEW_BEFORE = datetime.timedelta(days=30)
CONTROLLER_NAME = "l3dist-controller"


@dataclass(frozen=True)
class AmphoraCertificates:
    """What an amphora's config drive carries: the CA to trust (controller clients are signed by
    it) and the amphora's own certificate and key, in one PEM (Octavia's server.pem)."""

    ca_pem: bytes
    server_pem: bytes


class LocalCA:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_cert_path = directory / "ca.pem"
        self.ca_key_path = directory / "ca.key"
        self.client_path = directory / "controller.pem"  # certificate and key

    # -- the CA -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """API, worker and lab processes may all create the CA on first start: one does."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def ensure(self) -> None:
        """Create the CA and the controller's client certificate when missing or expiring."""
        if self._fresh(self.ca_cert_path) and self._fresh(self.client_path):
            return
        with self._locked():
            if not self._fresh(self.ca_cert_path):
                key = ec.generate_private_key(ec.SECP256R1())
                name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "l3dist local CA")])
                now = _now()
                cert = (
                    x509.CertificateBuilder()
                    .subject_name(name)
                    .issuer_name(name)
                    .public_key(key.public_key())
                    .serial_number(x509.random_serial_number())
                    .not_valid_before(now - datetime.timedelta(minutes=5))
                    .not_valid_after(now + CA_VALIDITY)
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(
                        x509.KeyUsage(
                            digital_signature=False,
                            content_commitment=False,
                            key_encipherment=False,
                            data_encipherment=False,
                            key_agreement=False,
                            key_cert_sign=True,
                            crl_sign=True,
                            encipher_only=False,
                            decipher_only=False,
                        ),
                        critical=True,
                    )
                    .sign(key, hashes.SHA256())
                )
                _write_private(self.ca_key_path, _key_pem(key))
                write_atomic(
                    self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM).decode()
                )
            if not self._fresh(self.client_path):
                _write_private(self.client_path, self._issue(CONTROLLER_NAME, client=True))
        client_context.cache_clear()

    @property
    def ca_pem(self) -> bytes:
        self.ensure()
        return self.ca_cert_path.read_bytes()

    def _fresh(self, path: Path) -> bool:
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (FileNotFoundError, ValueError):
            return False
        return cert.not_valid_after_utc - _now() > RENEW_BEFORE

    # -- issuing ------------------------------------------------------------------------------

    def _issue(self, common_name: str, client: bool) -> bytes:
        """A certificate for common_name (also its DNS name), signed by the CA: PEM of the
        certificate followed by its new private key."""
        key = ec.generate_private_key(ec.SECP256R1())
        return self._sign(key.public_key(), common_name, client).public_bytes(
            serialization.Encoding.PEM
        ) + _key_pem(key)

    def _sign(self, public_key: Any, common_name: str, client: bool) -> x509.Certificate:
        ca_key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        now = _now()
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + CERT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )

    def sign_host(self, csr_pem: bytes, host_id: str) -> x509.Certificate:
        """An enrolling host's server certificate for its own key (the key never leaves the
        host): named by host_id, the controller's choice whatever the request's subject says.

        Raises ValueError for anything but a well-formed request, signed by its own key, for
        an EC P-256 (or larger) or RSA (2048 bits or more) key."""
        self.ensure()
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise ValueError("csr_pem is not a PEM certificate signing request") from None
        if not csr.is_signature_valid:
            raise ValueError("csr_pem is not signed by its own key")
        key = csr.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.key_size < 256:
                raise ValueError("csr_pem: EC keys of at least 256 bits only")
        elif isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048:
                raise ValueError("csr_pem: RSA keys of at least 2048 bits only")
        else:
            raise ValueError("csr_pem: EC or RSA keys only")
        return self._sign(key, host_id, client=False)

    def issue_amphora(self, amphora_id: str) -> AmphoraCertificates:
        """The amphora's server certificate, named by its id (the controller checks that name)."""
        self.ensure()
        return AmphoraCertificates(self.ca_pem, self._issue(amphora_id, client=False))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a file holding a private key: mode 0600 from the start, replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_amphora_files(certificates: AmphoraCertificates, directory: Path) -> tuple[Path, Path]:
    """Put an amphora's certificates in its config drive (files mode 0600): (ca, server)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca, server = directory / "client_ca.pem", directory / "server.pem"
    _write_private(ca, certificates.ca_pem)
    _write_private(server, certificates.server_pem)
    return ca, server


@functools.cache
def client_context(directory: Path) -> ssl.SSLContext:
    """The controller's TLS context: trusts only the local CA, presents the controller's
    certificate, checks the agent's name (its amphora id)."""
    ca = LocalCA(directory)
    ca.ensure()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca.ca_cert_path))
    context.load_cert_chain(str(ca.client_path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def server_context_args(
    ca_file: Path, server_pem: Path, server_key: Path | None = None
) -> dict[str, object]:
    """uvicorn's TLS settings for an agent: its certificate (and key, in the same file unless
    given apart), and client certificates required and checked against the controller's CA."""
    return {
        "ssl_certfile": str(server_pem),
        "ssl_keyfile": str(server_key or server_pem),
        "ssl_ca_certs": str(ca_file),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }


def configured_ca() -> LocalCA:
    """The local CA of this controller's configuration ([certificates] ca_dir)."""
    from l3dist.common import config

    return LocalCA(config.load().certificates.ca_dir)
