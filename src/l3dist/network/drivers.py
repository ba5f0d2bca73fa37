"""Choosing the network driver by configuration, through the ``l3dist.network_drivers`` entry
points, so an operator can add a driver (e.g. for Neutron) without touching the controller."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from l3dist.network.base import AbstractNetworkDriver

GROUP = "l3dist.network_drivers"


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load(name: str, **kwargs: Any) -> AbstractNetworkDriver:
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise ValueError(f"no network driver {name!r} (available: {', '.join(available())})")
    driver_class = matches[0].load()
    driver: AbstractNetworkDriver = driver_class(**kwargs)
    return driver
