"""Migrations build the spec's data model from an empty database, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from l3dist.db import models, session

# The spec's "Data model impact" section: table -> {column: (type, nullable)}.
SPEC = {
    "vip": {"distributor_id": ("VARCHAR(36)", True)},
    "distributor": {
        "id": ("VARCHAR(36)", False),
        "distributor_type": ("VARCHAR(36)", False),
        "status": ("VARCHAR(36)", True),
    },
    "amphora": {
        "load_balancer_id": ("VARCHAR(36)", True),
        "service_type": ("VARCHAR(36)", True),
        "frontend_ip": ("VARCHAR(64)", True),
        "frontend_subnet_id": ("VARCHAR(36)", True),
        "frontend_port_id": ("VARCHAR(36)", True),
        "frontend_interface": ("VARCHAR(16)", True),
        "frontend_id": ("INTEGER", True),
        "frontend_priority": ("INTEGER", True),
    },
    "amphora_health": {
        "amphora_id": ("VARCHAR(36)", False),
        "last_update": ("DATETIME", False),
        "busy": ("BOOLEAN", False),
    },
    "amphora_registration": {
        "amphora_id": ("VARCHAR(36)", False),
        "load_balancer_id": ("VARCHAR(36)", False),
        "distributor_id": ("VARCHAR(36)", True),
    },
    "distributor_l3_bgp_speaker": {
        "id": ("VARCHAR(36)", False),
        "ip_version": ("INTEGER", False),
        "local_as": ("BIGINT", False),  # spec: Integer; 4-byte ASNs need 64 bits signed
    },
    "distributor_l3_bgp_peer": {
        "id": ("VARCHAR(36)", False),
        "peer_ip": ("VARCHAR(64)", False),
        "remote_as": ("BIGINT", False),
        "auth_type": ("VARCHAR(16)", True),
        "ttl_hops": ("INTEGER", True),
        "hold_time": ("INTEGER", True),
        "keepalive_interval": ("INTEGER", True),
    },
    "distributor_l3_bgp_peer_registration": {
        "distributor_l3_bgp_speaker_id": ("VARCHAR(36)", False),
        "distributor_l3_bgp_peer_id": ("VARCHAR(36)", False),
    },
    "distributor_l3_amphora_bgp_speaker_registration": {
        "distributor_l3_bgp_speaker_id": ("VARCHAR(36)", False),
        "amphora_id": ("VARCHAR(36)", False),
    },
    "distributor_l3_amphora_vip_registration": {
        "amphora_id": ("VARCHAR(36)", False),
        "load_balancer_id": ("VARCHAR(36)", False),
        "nexthop_ip": ("VARCHAR(64)", False),
        "distributor_l3_bgp_peer_id": ("VARCHAR(36)", True),
    },
    # Octavia's tables the spec extends (a selection of their columns).
    "load_balancer": {
        "project_id": ("VARCHAR(36)", True),
        "name": ("VARCHAR(255)", True),
        "provisioning_status": ("VARCHAR(16)", False),
        "operating_status": ("VARCHAR(16)", False),
        "topology": ("VARCHAR(36)", True),
    },
    "listener": {"protocol_port": ("INTEGER", False), "load_balancer_id": ("VARCHAR(36)", False)},
    "pool": {"lb_algorithm": ("VARCHAR(255)", False)},
    "member": {"ip_address": ("VARCHAR(64)", False)},
    "health_monitor": {"delay": ("INTEGER", False)},
}
VRRP_COLUMNS = {"vrrp_ip", "vrrp_port_id", "vrrp_interface", "vrrp_id", "vrrp_priority"}


def normalized(type_name: str) -> str:
    """Dialect spellings of the same SQL type."""
    return {"TIMESTAMP WITHOUT TIME ZONE": "DATETIME", "TIMESTAMP": "DATETIME"}.get(
        type_name, type_name
    )


def test_upgrade_from_empty_builds_the_spec_model(db_url: str) -> None:
    assert session.current_revision(db_url) is None
    session.upgrade(db_url)
    inspector = inspect(session.make_engine(db_url))
    tables = set(inspector.get_table_names())
    for table, columns in SPEC.items():
        assert table in tables
        found = {col["name"]: col for col in inspector.get_columns(table)}
        for name, (type_name, nullable) in columns.items():
            assert name in found, f"{table}.{name} missing"
            assert normalized(str(found[name]["type"])) == type_name, (table, name)
            assert found[name]["nullable"] is nullable, (table, name)
    assert not VRRP_COLUMNS & {c["name"] for c in inspector.get_columns("amphora")}
    assert session.current_revision(db_url) == "0009"
    assert {"worker_job", "logbooks", "flowdetails", "atomdetails"} <= tables


def test_db_upgrade_command_is_idempotent(db_url: str, tmp_path: Path) -> None:
    l3dist = str(Path(sys.executable).with_name("l3dist"))
    env = {
        "L3DIST_DATABASE_URL": db_url,
        "L3DIST_CONFIG": str(tmp_path / "none.toml"),
        "PATH": "/usr/bin:/bin",
    }
    for _ in range(2):
        result = subprocess.run(
            [l3dist, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    assert session.current_revision(db_url) == "0009"


@pytest.mark.parametrize("bad_asn", [0, 4294967296])
def test_database_refuses_an_out_of_range_asn(db_url: str, bad_asn: int) -> None:
    from sqlalchemy.exc import IntegrityError

    from l3dist.db.models import BgpSpeaker

    session.upgrade(db_url)
    db = session.Database(db_url)
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(BgpSpeaker(ip_version=4, local_as=bad_asn))


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    """No drift between the ORM models and what the migrations create (taskflow's own tables
    aside)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from l3dist.db.models import Base

    session.upgrade(db_url)
    engine = session.make_engine(db_url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    taskflow = {"logbooks", "flowdetails", "atomdetails"}
    assert [d for d in diffs if not (d[0] == "remove_table" and d[1].name in taskflow)] == []


def test_processes_started_together_upgrade_a_fresh_database_once(db_url: str) -> None:
    """API, worker and health manager started at once each upgrade the schema: one does, the
    others wait and find it current (without the lock, 3 of 4 failed on both databases)."""
    code = f"from l3dist.db.session import upgrade; upgrade({db_url!r})"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    assert session.current_revision(db_url) == "0009"


def test_distributors_recorded_before_their_checks_get_a_job(db_url: str) -> None:
    """Migration 0008: a distributor left PENDING_CREATE by an older release (nothing set it
    ACTIVE then) gets its create_distributor job; one already queued gets no second."""
    session.upgrade(db_url, "0007")
    db = session.Database(db_url)
    with db.session() as rows:
        for name in ("old", "queued", "done"):
            rows.add(models.Distributor(id=name, name=name, distributor_type="L3_BGP",
                                           status="ACTIVE" if name == "done" else "PENDING_CREATE",
                                           config_data={"bgp_speaker_ids": []}))  # fmt: skip
        rows.flush()
        rows.add(models.WorkerJob(flow="create_distributor", target_id="queued",
                                     arguments={}, state="PENDING"))  # fmt: skip
    session.upgrade(db_url)
    with db.session(writer=False) as rows:
        jobs = sorted((j.target_id, j.flow, j.state) for j in rows.query(models.WorkerJob))
    assert jobs == [("old", "create_distributor", "PENDING"),
                    ("queued", "create_distributor", "PENDING")]  # fmt: skip
    db.engine.dispose()
