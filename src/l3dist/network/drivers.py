"""Choosing the network driver by configuration (entry-point group ``l3dist.network_drivers``,
see ``l3dist.common.plugins``). Each entry point names a factory that takes the controller's
database (a driver may keep its state there, or ignore it) and returns the driver."""

from __future__ import annotations

from l3dist.common import plugins
from l3dist.db.session import Database
from l3dist.network.base import AbstractNetworkDriver

GROUP = plugins.NETWORK


def available() -> list[str]:
    return plugins.available(GROUP)


def load(name: str | None, db: Database) -> AbstractNetworkDriver:
    driver: AbstractNetworkDriver = plugins.load(GROUP, name, "network driver")(db)
    return driver
