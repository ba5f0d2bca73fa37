"""l3dist controller configuration: a TOML file, with environment overrides for the database URL
(``L3DIST_DATABASE_URL``) and the local CA directory (``L3DIST_CA_DIR``).

Looked up in ``$L3DIST_CONFIG``, then ``/etc/l3dist/l3dist.toml``; every setting has a default, so
the embedded defaults (SQLite, no-auth development mode, lab drivers) work with no file at all.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_CONFIG_PATH = Path("/etc/l3dist/l3dist.toml")
DEFAULT_STATE_DIR = Path("/var/lib/l3dist")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(Strict):
    url: str = f"sqlite:///{DEFAULT_STATE_DIR / 'l3dist.db'}"


class ApiConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9876, ge=1, le=65535)
    # noauth: project and roles come from X-Project-Id / X-Roles headers (development);
    # token: bearer tokens checked against the api_token table.
    auth_strategy: Literal["noauth", "token"] = "noauth"
    noauth_default_project: str = "admin"
    noauth_default_roles: list[str] = Field(default_factory=lambda: ["admin"])
    pagination_max_limit: int = Field(default=1000, ge=1)


class NetworkConfig(Strict):
    # An entry point of the l3dist.network_drivers group: "lab" (embedded default) or "noop".
    driver: str = "lab"


class ControllerConfig(Strict):
    compute_driver: Literal["lab", "noop"] = "lab"
    distributor_driver: Literal["l3_bgp", "noop"] = "l3_bgp"
    # The BGP speaker amphorae run (lab compute driver).
    speaker_driver: Literal["bird", "exabgp"] = "bird"
    # Flows a worker runs at once, and when a silent worker's jobs are taken over (resumed).
    max_parallel_jobs: int = Field(default=4, ge=1, le=64)
    heartbeat_interval: float = Field(default=1.0, gt=0)
    job_stale_after: float = Field(default=10.0, gt=0)
    poll_interval: float = Field(default=0.1, gt=0)


class CertificatesConfig(Strict):
    # The local CA for mutual TLS with amphora agents: created on first start.
    ca_dir: Path = DEFAULT_STATE_DIR / "ca"


class Config(Strict):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    controller: ControllerConfig = Field(default_factory=ControllerConfig)
    certificates: CertificatesConfig = Field(default_factory=CertificatesConfig)


def load(path: Path | None = None) -> Config:
    path = path or Path(os.environ.get("L3DIST_CONFIG", DEFAULT_CONFIG_PATH))
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    config = Config.model_validate(data)
    if url := os.environ.get("L3DIST_DATABASE_URL"):
        config.database.url = url
    if ca_dir := os.environ.get("L3DIST_CA_DIR"):
        config.certificates.ca_dir = Path(ca_dir)
    return config
