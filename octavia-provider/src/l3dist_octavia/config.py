"""The driver's settings: the ``[l3dist]`` group of octavia.conf, read through oslo.config.

Octavia constructs provider drivers with no arguments, so the driver reads its settings from
Octavia's own configuration (``cfg.CONF``) as every provider does. Tests (and anyone
embedding the driver) build a :class:`Settings` directly instead.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

GROUP = "l3dist"


@dataclass(frozen=True)
class Settings:
    """What the driver needs to talk to l3dist and to pick an L3 topology."""

    api_url: str = "http://127.0.0.1:9876"
    # A bearer token of l3dist (``l3dist token create``); None: l3dist runs in no-auth mode
    # and the driver says who it is with X-Project-Id / X-Roles.
    auth_token: str | None = None
    project_id: str = "service"
    # The driver creates objects in the caller's project and under Octavia's ids: it must be
    # an admin of l3dist (or hold the service role next to a writing role).
    roles: tuple[str, ...] = ("admin",)
    # The distributor (name or id) of a load balancer whose flavor names none; None: l3dist
    # picks its only distributor, and refuses when there are several.
    default_distributor: str | None = None
    default_amphora_count: int = 2
    timeout: float = 30.0
    # Seconds between two status passes of the provider agent (one l3dist request each).
    status_interval: float = 0.5
    extra_headers: dict[str, str] = field(default_factory=dict)


def _options() -> list[Any]:
    from oslo_config import cfg

    return [
        cfg.StrOpt("api_url", default=Settings.api_url, help="Base URL of l3dist's REST API."),
        cfg.StrOpt(
            "auth_token",
            secret=True,
            help="Bearer token for l3dist (l3dist token create); unset in no-auth mode.",
        ),
        cfg.StrOpt(
            "project_id",
            default=Settings.project_id,
            help="X-Project-Id sent in l3dist's no-auth mode.",
        ),
        cfg.ListOpt(
            "roles",
            default=list(Settings.roles),
            help="X-Roles sent in l3dist's no-auth mode (admin: objects keep Octavia's ids).",
        ),
        cfg.StrOpt(
            "default_distributor",
            help="Distributor (name or id) when the flavor names none.",
        ),
        cfg.IntOpt(
            "default_amphora_count",
            default=Settings.default_amphora_count,
            min=1,
            help="Amphorae of an ACTIVE_ACTIVE load balancer when the flavor says nothing.",
        ),
        cfg.FloatOpt(
            "timeout", default=Settings.timeout, min=0.1, help="Seconds per l3dist API call."
        ),
        cfg.FloatOpt(
            "status_interval",
            default=Settings.status_interval,
            min=0.05,
            help="Seconds between the provider agent's status passes (one l3dist request each).",
        ),
    ]


def list_opts() -> list[tuple[str, list[Any]]]:
    """For oslo-config-generator (the ``oslo.config.opts`` entry point)."""
    return [(GROUP, _options())]


def from_oslo_config(conf: Any = None) -> Settings:
    """The settings in octavia.conf's ``[l3dist]`` group (registered here on first use)."""
    from oslo_config import cfg

    conf = cfg.CONF if conf is None else conf
    # Registering the same options again (another driver instance) is a no-op.
    with contextlib.suppress(cfg.DuplicateOptError):
        conf.register_opts(_options(), group=GROUP)
    group = getattr(conf, GROUP)
    return Settings(
        api_url=group.api_url,
        auth_token=group.auth_token,
        project_id=group.project_id,
        roles=tuple(group.roles),
        default_distributor=group.default_distributor,
        default_amphora_count=group.default_amphora_count,
        timeout=group.timeout,
        status_interval=group.status_interval,
    )
