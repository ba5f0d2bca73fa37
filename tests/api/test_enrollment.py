"""Enrolling amphora hosts (issue 13), with the real commands: the operator adds a host with
``l3dist amphora-host enroll`` (a one-time token), the host's agent enrolls with
``l3dist-agent enroll`` against the running ``l3dist api``. The key is made on the host and
never sent; a used, expired or unknown token, or a bad request, is refused and records nothing.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update

from l3dist.contracts.enrollment import ENROLL_PATH
from l3dist.db import models

from .conftest import BIN, Server

ADMIN_ENV = {"L3DIST_PROJECT_ID": "admin", "L3DIST_ROLES": "admin"}


def l3dist(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ADMIN_ENV, "L3DIST_API_URL": server.url}
    return subprocess.run(
        [str(BIN / "l3dist"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def add_host(server: Server, name: str, *extra: str) -> dict[str, Any]:
    result = l3dist(server, "amphora-host", "enroll", "--name", name, *extra, "-f", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def agent_config(tmp_path: Path, server: Server, name: str, address: str) -> Path:
    path = tmp_path / name / "agent.toml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f'controller_url = "{server.url}"\n'
        f'hostname = "{name}"\n'
        f'tls_dir = "{tmp_path / name / "tls"}"\n'
        f'state_dir = "{tmp_path / name / "state"}"\n'
        f'[management]\ninterface = "eth0"\naddresses = ["{address}/24"]\n'
        '[frontend]\nparent_interface = "eth1"\n'
    )
    return path


def agent_enroll(config: Path, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "l3dist-agent"), "enroll", "--config", str(config), f"--token={token}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def host_rows(server: Server) -> list[dict[str, Any]]:
    with server.db.session() as s:
        rows = s.scalars(select(models.AmphoraHost).order_by(models.AmphoraHost.name))
        return [
            {c.name: getattr(r, c.name) for c in models.AmphoraHost.__table__.columns} for r in rows
        ]


def test_a_host_enrolls_with_its_own_key_once(server: Server, tmp_path: Path) -> None:
    added = add_host(server, "host-1")
    assert added["status"] == "PENDING_ENROLLMENT" and added["enrollment_token"]
    config = agent_config(tmp_path, server, "host-1", "198.18.0.21")

    result = agent_enroll(config, added["enrollment_token"])

    assert result.returncode == 0, result.stderr
    tls = tmp_path / "host-1" / "tls"
    assert (tls / "key.pem").stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key((tls / "key.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((tls / "cert.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((tls / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)  # signed by the controller's CA
    assert ca == x509.load_pem_x509_certificate((server.ca_dir / "ca.pem").read_bytes())
    assert cert.public_key() == key.public_key()  # for the host's own key
    host_id = json.loads((tls / "host.json").read_text())["host_id"]
    assert host_id == added["id"]
    assert cert.subject.rfc4514_string() == f"CN={host_id}"  # the controller checks this name

    shown = json.loads(l3dist(server, "amphora-host", "show", "host-1", "-f", "json").stdout)
    assert shown["status"] == "AVAILABLE"
    assert shown["management_address"] == "198.18.0.21" and shown["hostname"] == "host-1"
    assert shown["enrolled_at"] and shown["token_expires_at"] is None
    # The key never left the host: nothing the controller stored holds it.
    key_pem = (tls / "key.pem").read_text()
    stored = json.dumps(host_rows(server), default=str)
    assert "PRIVATE KEY" not in stored and key_pem.splitlines()[1] not in stored

    before = host_rows(server)
    again = agent_enroll(config, added["enrollment_token"])
    assert again.returncode == 1 and "already used" in again.stderr, again.stderr
    assert host_rows(server) == before


def test_unknown_and_expired_tokens_record_nothing(server: Server, tmp_path: Path) -> None:
    unknown = agent_enroll(agent_config(tmp_path, server, "h-x", "198.18.0.30"), "x" * 43)
    assert unknown.returncode == 1 and "not known" in unknown.stderr, unknown.stderr
    assert host_rows(server) == []

    added = add_host(server, "host-2", "--token-ttl", "60")
    with server.db.session() as s:  # an hour passes
        s.execute(
            update(models.AmphoraHost).values(
                token_expires_at=models.utcnow() - datetime.timedelta(hours=1)
            )
        )
    before = host_rows(server)
    config = agent_config(tmp_path, server, "host-2", "198.18.0.22")
    expired = agent_enroll(config, added["enrollment_token"])
    assert expired.returncode == 1 and "expired" in expired.stderr, expired.stderr
    assert host_rows(server) == before and before[0]["status"] == "PENDING_ENROLLMENT"
    assert not (tmp_path / "host-2" / "tls" / "cert.pem").exists()


def test_bad_enrollment_requests_are_refused(server: Server, tmp_path: Path) -> None:
    first = add_host(server, "host-3")
    assert (
        agent_enroll(
            agent_config(tmp_path, server, "host-3", "198.18.0.23"), first["enrollment_token"]
        ).returncode
        == 0
    )
    second = add_host(server, "host-4")
    before = host_rows(server)
    url = server.url + ENROLL_PATH
    body = {
        "token": second["enrollment_token"],
        "csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nnot a request\n"
        "-----END CERTIFICATE REQUEST-----\n",
        "management_address": "198.18.0.24",
        "hostname": "host-4",
    }
    bad_csr = httpx.post(url, json=body, timeout=30)
    assert bad_csr.status_code == 400 and bad_csr.json()["field"] == "csr_pem", bad_csr.text
    same_address = agent_enroll(
        agent_config(tmp_path, server, "host-4", "198.18.0.23"), second["enrollment_token"]
    )
    assert same_address.returncode == 1 and "management_address" in same_address.stderr
    unknown_field = httpx.post(url, json={**body, "role": "admin"}, timeout=30)
    assert unknown_field.status_code == 400 and unknown_field.json()["field"] == "role"
    assert host_rows(server) == before


def test_hosts_are_admin_only_and_can_be_disabled_and_removed(server: Server) -> None:
    add_host(server, "host-5")
    tenant = {"X-Project-Id": "p", "X-Roles": "member"}
    path = server.url + "/v2/octavia/amphora-hosts"
    assert httpx.get(path, headers=tenant).status_code == 403
    created = httpx.post(path, json={"amphora_host": {"name": "h"}}, headers=tenant)
    assert created.status_code == 403
    disabled = l3dist(server, "amphora-host", "set", "host-5", "--disable", "-f", "json")
    assert disabled.returncode == 0, disabled.stderr
    assert json.loads(disabled.stdout)["enabled"] is False
    listed = json.loads(l3dist(server, "amphora-host", "list", "-f", "json").stdout)
    assert [(h["name"], h["enabled"]) for h in listed] == [("host-5", False)]
    assert l3dist(server, "amphora-host", "delete", "host-5").returncode == 0
    assert host_rows(server) == []


def reset_jobs(server: Server) -> list[str]:
    with server.db.session(writer=False) as session:
        rows = session.scalars(
            select(models.WorkerJob.target_id).where(models.WorkerJob.flow == "reset_host")
        )
        return list(rows)


def test_a_host_out_of_the_pool_can_be_reset_but_not_one_in_use(
    server: Server, tmp_path: Path
) -> None:
    """``l3dist amphora-host reset`` on an UNREACHABLE host queues one reset job (the worker
    offers it again if its agent answers clean); on a host that holds an amphora, or one not
    enrolled, it is refused (409, nothing queued); an unknown host is 404."""
    away, busy, _new = (add_host(server, name) for name in ("away", "busy", "new"))
    for host, address in ((away, "198.51.100.21"), (busy, "198.51.100.22")):
        config = agent_config(tmp_path, server, host["name"], address)
        assert agent_enroll(config, host["enrollment_token"]).returncode == 0
    with server.db.session() as session:
        session.add(models.Amphora(id="amphora-1", status="ALLOCATED"))
        session.flush()
        session.execute(update(models.AmphoraHost).where(models.AmphoraHost.id == away["id"])
                        .values(status="UNREACHABLE"))  # fmt: skip
        session.execute(update(models.AmphoraHost).where(models.AmphoraHost.id == busy["id"])
                        .values(status="ALLOCATED", amphora_id="amphora-1"))  # fmt: skip
    done = l3dist(server, "amphora-host", "reset", "away", "-f", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "UNREACHABLE"  # until the worker's reset
    assert l3dist(server, "amphora-host", "reset", "away").returncode == 0  # one job is enough
    assert reset_jobs(server) == [away["id"]]
    refused = l3dist(server, "amphora-host", "reset", "busy")
    assert refused.returncode != 0 and "holds amphora amphora-1" in refused.stderr
    assert "409" in refused.stderr
    pending = l3dist(server, "amphora-host", "reset", "new")
    assert pending.returncode != 0 and "not enrolled" in pending.stderr
    unknown = httpx.put(server.url + "/v2/octavia/amphora-hosts/nope/reset",
                        headers={"X-Project-Id": "a", "X-Roles": "admin"})  # fmt: skip
    assert unknown.status_code == 404, unknown.text
    tenant = httpx.put(server.url + f"/v2/octavia/amphora-hosts/{away['id']}/reset",
                       headers={"X-Project-Id": "p", "X-Roles": "member"})  # fmt: skip
    assert tenant.status_code == 403
    assert reset_jobs(server) == [away["id"]]
