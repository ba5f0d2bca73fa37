"""Shared fixtures. Lab tests run against real FRR, BIRD, ExaBGP and HAProxy in namespaces."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/lab/" in str(item.fspath):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab_prerequisites() -> None:
    """Lab tests need root and the daemons; fail loudly rather than skip (CI must run them)."""
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (network namespaces); run ./run test as root")
    for tool in ("vtysh", "bird", "birdc", "haproxy", "nft", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing; ./run test installs it")


def postgres_admin_url() -> str:
    url = os.environ.get("L3DIST_TEST_POSTGRES_URL")
    if not url:
        pytest.fail("L3DIST_TEST_POSTGRES_URL is not set: run the tests with ./run test")
    return url


@contextmanager
def database_url(kind: str, directory: Path) -> Iterator[str]:
    """A fresh empty database: an SQLite file in directory, or a new PostgreSQL database (dropped
    afterwards)."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'l3dist.db'}"
        return
    with _postgres_database() as url:
        yield url


@contextmanager
def database_copy(template_url: str, directory: Path) -> Iterator[str]:
    """A fresh database holding what the template database holds (dropped afterwards): an
    SQLite file copied with SQLite's backup API (WAL included), or a PostgreSQL database made
    from the template (``CREATE DATABASE ... TEMPLATE``: a file copy, no migration run)."""
    if template_url.startswith("sqlite"):
        target = directory / "l3dist.db"
        with (
            contextlib.closing(sqlite3.connect(template_url.split("///", 1)[1])) as source,
            contextlib.closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)
        yield f"sqlite:///{target}"
        return
    with _postgres_database(template=template_url.rsplit("/", 1)[1]) as url:
        yield url


@contextmanager
def _postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (empty, or a copy of template), dropped afterwards."""
    admin = postgres_admin_url()
    name = f"l3dist_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(
        admin.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        if template is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            _copy_template(conn, name, template)
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        drop_database(engine, name)
        engine.dispose()


def _copy_template(conn: Any, name: str, template: str) -> None:
    """CREATE DATABASE name TEMPLATE template. A template must have no session: the ones its
    builder left idle (our role's) are closed. An autovacuum worker visiting the template is
    not ours to terminate (PostgreSQL refuses: it counts as a superuser process); CREATE
    DATABASE signals it itself, and is retried while it has not yet left."""
    from sqlalchemy.exc import DBAPIError

    idle = text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"
                " AND usename = current_user AND pid <> pg_backend_pid()")  # fmt: skip
    for attempt in range(30):
        conn.execute(idle, {"name": template})
        try:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            return
        except DBAPIError:
            if attempt == 29:
                raise
            time.sleep(0.2)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url(request.param, tmp_path) as url:
        yield url


def drop_database(engine: Any, name: str) -> None:
    """Drop a test database, closing its sessions (FORCE). Retried: FORCE refuses while an
    autovacuum worker (not our role's process) happens to visit the new database."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(30):
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == 29:
                raise
            time.sleep(0.2)
