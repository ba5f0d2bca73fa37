"""l3dist controller configuration: a TOML file, with environment overrides for the database URL
(``L3DIST_DATABASE_URL``) and the local CA directory (``L3DIST_CA_DIR``).

Looked up in ``$L3DIST_CONFIG``, then ``/etc/l3dist/l3dist.toml``. Every setting has a default
except the drivers that depend on where l3dist runs: the network and compute drivers (and where
amphorae send heartbeats) are named by the operator's configuration; a process that needs one
that is not configured stops with a message that says which setting to add. Drivers are entry
points (``l3dist.common.plugins``), so the names are whatever is installed.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
    # How long an idle client connection is kept open. Longer than any client's keep-alive
    # expiry (httpx: 5 s), so a client never sends on a connection the server is closing at
    # that moment (it would get "Server disconnected without sending a response").
    keep_alive_timeout: int = Field(default=75, ge=1, le=3600)


DriverName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class NetworkConfig(Strict):
    # An entry point of the l3dist.network_drivers group; no default (it depends on the site).
    driver: DriverName | None = None


class ControllerConfig(Strict):
    # Entry points of l3dist.compute_drivers (no default: it depends on the site),
    # l3dist.distributor_drivers and l3dist.speaker_drivers (the speaker amphorae run).
    compute_driver: DriverName | None = None
    distributor_driver: DriverName = "l3_bgp"
    # Entry points of l3dist.amphora_drivers: rest (the agents over HTTPS); noop answers in
    # process (API tests, no amphorae).
    amphora_driver: DriverName = "rest"
    speaker_driver: DriverName = "bird"
    # Flows a worker runs at once, and when a silent worker's jobs are taken over (resumed).
    max_parallel_jobs: int = Field(default=4, ge=1, le=64)
    heartbeat_interval: float = Field(default=1.0, gt=0)
    job_stale_after: float = Field(default=10.0, gt=0)
    # How often an idle worker looks for a job: a read (no write lock) every poll_interval,
    # so a change waits at most this long in the queue.
    poll_interval: float = Field(default=0.02, gt=0)
    # Drain Amphora (scale-in, planned failover, the drain action): how long an amphora whose
    # route is withdrawn keeps serving its established connections before it is removed anyway.
    drain_timeout: float = Field(default=60.0, ge=0, le=86400)
    metrics_port: int | None = Field(default=None, ge=1, le=65535)


class CertificatesConfig(Strict):
    # The local CA for mutual TLS with amphora agents: created on first start.
    ca_dir: Path = DEFAULT_STATE_DIR / "ca"


class HealthConfig(Strict):
    """Heartbeats (agents -> health manager) and failover (Octavia's [health_manager])."""

    bind_host: str = "0.0.0.0"
    bind_port: int = Field(default=5555, ge=1, le=65535)
    # Where the agents send heartbeats (put in their config drives): the health managers'
    # addresses as the amphorae reach them (host:port). Empty: no heartbeats, no failover.
    controller_ip_port_list: list[str] = Field(default_factory=list)
    heartbeat_interval: float = Field(default=1.0, gt=0, le=60)
    heartbeat_timeout: float = Field(default=3.0, gt=0)  # stale after this long without one
    health_check_interval: float = Field(default=0.25, gt=0)
    # Sooner when the routers say so: an amphora silent this long whose BGP sessions went down
    # at every router streaming BMP to l3dist (after its last heartbeat, none up anywhere) is
    # stale without waiting for heartbeat_timeout. A lost heartbeat alone never counts: the
    # fabric must have lost it too. 0: heartbeats only.
    fabric_down_timeout: float = Field(default=1.5, ge=0)
    # Circuit breaker: more amphorae stale at once than this is an outage of the fabric or of
    # the controller's network, not of amphorae: no failover, they wait as FAILOVER_STOPPED.
    failover_threshold: int = Field(default=3, ge=1)
    # An amphora host that did not answer (UNREACHABLE, out of the pool) is tried again this
    # often: a reset job; when its agent answers and is clean, it is AVAILABLE again.
    unreachable_host_retry_interval: float = Field(default=30.0, gt=0)
    # HMAC key of the heartbeats; unset: a random key kept in the state directory.
    heartbeat_key: SecretStr | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)


class RouterViewConfig(Strict):
    """The BMP collector (``l3dist routerview``): where the operator's routers send BMP (RFC
    7854; on FRR ``bmp connect ADDRESS port PORT``), collected by pmacct's ``pmbmpd``."""

    bind_host: str = "0.0.0.0"
    bind_port: int = Field(default=1790, ge=1, le=65535)
    pmbmpd: str = "pmbmpd"
    max_routers: int = Field(default=16, ge=1, le=1000)
    # A router re-sends its whole view on a new BMP session: what it has not re-sent this long
    # after reconnecting is dropped.
    sync_grace: float = Field(default=3.0, gt=0, le=600)
    # A router that sends BMP statistics reports (FRR: ``bmp stats interval 1000``) and has not
    # reported on a BGP session this long has lost it (FRR 8.4 sends no Peer Down for a
    # deleted dynamic neighbour). More than its interval, with room for one late report.
    silent_peer: float = Field(default=3.5, gt=0, le=3600)
    # A path whose post-policy state the router has not confirmed (FRR before 10: see
    # l3dist.routerview.view) is settled by closing that router's BMP session (it reconnects
    # and re-sends its view), at most this often per router; 0 never (needs CAP_NET_ADMIN).
    resync_interval: float = Field(default=1.0, ge=0, le=3600)
    # pmbmpd's configuration and message pipe; unset: "routerview" beside the local CA.
    state_dir: Path | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)


class MetricsConfig(Strict):
    """Where the processes serve their Prometheus metrics: this address, each on the
    ``metrics_port`` of its own section (``[controller]`` for a worker, ``[health]``,
    ``[router_view]``); the API serves them on its own ``/metrics``."""

    bind_host: str = "127.0.0.1"


class Config(Strict):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    controller: ControllerConfig = Field(default_factory=ControllerConfig)
    certificates: CertificatesConfig = Field(default_factory=CertificatesConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    router_view: RouterViewConfig = Field(default_factory=RouterViewConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)


def load(path: Path | None = None) -> Config:
    path = path or Path(os.environ.get("L3DIST_CONFIG", DEFAULT_CONFIG_PATH))
    data = tomllib.loads(path.read_text()) if path.exists() else {}
    config = Config.model_validate(data)
    if url := os.environ.get("L3DIST_DATABASE_URL"):
        config.database.url = url
    if ca_dir := os.environ.get("L3DIST_CA_DIR"):
        config.certificates.ca_dir = Path(ca_dir)
    return config


def heartbeat_key(config: Config) -> bytes:
    """The heartbeats' HMAC key: configured, or made once (random, 0600) beside the local CA."""
    if config.health.heartbeat_key is not None:
        return config.health.heartbeat_key.get_secret_value().encode()
    path = config.certificates.ca_dir / "heartbeat.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    import secrets

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".heartbeat.key.{os.getpid()}.{secrets.token_hex(4)}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(secrets.token_hex(32))
    try:
        os.link(tmp, path)  # whole or not at all; the first process to link wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()
