"""Choosing the network driver by configuration, through the ``l3dist.network_drivers`` entry
points, so an operator can add a driver (e.g. for Neutron) without touching the controller.

Each entry point names a factory that takes the controller's database (a driver may keep its
state there, as the lab driver does, or ignore it) and returns the driver."""

from __future__ import annotations

from importlib.metadata import entry_points

from l3dist.db.session import Database
from l3dist.network.base import AbstractNetworkDriver

GROUP = "l3dist.network_drivers"


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load(name: str, db: Database) -> AbstractNetworkDriver:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise ValueError(f"no network driver {name!r} (available: {', '.join(available())})")
    factory = matches[0].load()
    driver: AbstractNetworkDriver = factory(db)
    return driver
