"""The one way l3dist loads a driver: by name, from an entry-point group.

Every driver family has its group, so a third party adds a driver by installing a package that
declares an entry point, without touching l3dist:

- ``l3dist.compute_drivers``: factory(db, config) -> AbstractComputeDriver
- ``l3dist.network_drivers``: factory(db) -> AbstractNetworkDriver
- ``l3dist.distributor_drivers``: factory() -> AbstractDistributorDriver (bound to the
  controller's services by the worker)
- ``l3dist.amphora_drivers``: factory(tls_context) -> AmphoraDriver (how the controller
  reaches agents; tls_context() makes its client TLS context)
- ``l3dist.speaker_drivers``: factory(bgp config, local addresses, work directory, *,
  anycast_prefixes) -> SpeakerDriver (loaded by the amphora agent; it must send only host
  routes inside anycast_prefixes)
- ``l3dist.cli_plugins``: register(typer app) adds commands to ``l3dist``

The configuration names the driver; no family has a default that is not a production driver.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

COMPUTE = "l3dist.compute_drivers"
NETWORK = "l3dist.network_drivers"
DISTRIBUTOR = "l3dist.distributor_drivers"
SPEAKER = "l3dist.speaker_drivers"
AMPHORA = "l3dist.amphora_drivers"
CLI = "l3dist.cli_plugins"


class DriverNotFound(ValueError):
    """No installed entry point of that name in the group."""


def available(group: str) -> list[str]:
    return sorted({ep.name for ep in entry_points(group=group)})


def load(group: str, name: str | None, what: str) -> Any:
    """The object the entry point ``name`` of ``group`` names (a driver factory); ``what`` is
    the family's name for the error (``compute driver``)."""
    if not name:
        raise DriverNotFound(
            f"no {what} configured (installed: {', '.join(available(group)) or 'none'})"
        )
    matches = [ep for ep in entry_points(group=group) if ep.name == name]
    if not matches:
        raise DriverNotFound(
            f"no {what} {name!r} installed (installed: {', '.join(available(group)) or 'none'})"
        )
    return matches[0].load()
