"""Mutual TLS between the controller and a real amphora agent: the agent answers only clients
with a certificate from the controller's CA (not one of its own amphora certificates), and the
controller accepts only the agent certificate issued for that amphora by its CA."""

from __future__ import annotations

import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from l3dist.amphora_client import AgentClient, AgentUnreachable
from l3dist.certificates import LocalCA, client_context, configured_ca
from l3dist.contracts.agent_api import AGENT_PORT
from l3dist_lab import amphora
from l3dist_lab.amphora import LabAmphora
from l3dist_lab.config import LabConfig


@pytest.fixture(scope="module")
def amp(lab: LabConfig) -> Iterator[LabAmphora]:
    created = amphora.create(lab, "bird")
    try:
        yield created
    finally:
        amphora.delete(created.id)


def context(cafile: Path, chain: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    if chain is not None:
        ctx.load_cert_chain(str(chain))
    return ctx


def answers(amp: LabAmphora, ctx: ssl.SSLContext, name: str | None = None) -> bool:
    """Whether an HTTPS request with ctx gets an HTTP answer from the agent."""
    try:
        with AgentClient(name or amp.host_id, amp.mgmt_ip4, ctx, timeout=5) as client:
            client.info()
    except AgentUnreachable:
        return False
    return True


def test_the_controller_certificate_is_answered(amp: LabAmphora) -> None:
    assert answers(amp, client_context(configured_ca().directory))
    assert amp.client().info()["amphora_id"] == amp.id


def test_clients_without_a_valid_certificate_are_refused(amp: LabAmphora, tmp_path: Path) -> None:
    ca = configured_ca()
    assert not answers(amp, context(ca.ca_cert_path, None)), "no client certificate"
    stranger = LocalCA(tmp_path / "other-ca")
    stranger.ensure()
    assert not answers(amp, context(ca.ca_cert_path, stranger.client_path)), "another CA"
    # An amphora's own certificate is for serving, not for calling other agents.
    other = ca.issue_amphora("another-amphora")
    (tmp_path / "amphora.pem").write_bytes(other.server_pem)
    assert not answers(amp, context(ca.ca_cert_path, tmp_path / "amphora.pem"))
    with pytest.raises(httpx.HTTPError):  # plain HTTP gets no API either
        httpx.get(f"http://{amp.mgmt_ip4}:{AGENT_PORT}/1.0/info", timeout=5)


def test_the_controller_refuses_an_agent_it_did_not_certify(
    amp: LabAmphora, tmp_path: Path
) -> None:
    # The certificate names another host (an address reused by a replacement, say).
    assert not answers(amp, client_context(configured_ca().directory), name="someone-else")
    # A controller of another CA does not trust this agent.
    stranger = LocalCA(tmp_path / "other-ca")
    stranger.ensure()
    assert not answers(amp, context(stranger.ca_cert_path, configured_ca().client_path))


def test_the_host_key_and_the_amphora_configuration_are_private(amp: LabAmphora) -> None:
    """The host's key (made on the host at enrollment) and the configuration its agent built
    for the amphora (BGP passwords) are mode 0600; the certificates are public."""
    tls = amp.dir / "tls"
    private = (tls / "key.pem", amp.agent_config_path, amp.dir / "state" / "assignment.json")
    for path in private:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o600, (path, oct(mode))
    assert b"PRIVATE KEY" in (tls / "key.pem").read_bytes()
    assert b"PRIVATE KEY" not in (tls / "cert.pem").read_bytes()
    ca = configured_ca()
    assert stat.S_IMODE(ca.ca_key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.directory.stat().st_mode) == 0o700
