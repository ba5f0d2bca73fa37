"""Network drivers are found by name through entry points (the configuration's choice)."""

from __future__ import annotations

import pytest

from l3dist.network import drivers
from l3dist.network.base import AbstractNetworkDriver
from l3dist.network.noop import NoopNetworkDriver


def test_drivers_are_entry_points() -> None:
    assert {"noop", "lab"} <= set(drivers.available())
    driver = drivers.load("noop")
    assert isinstance(driver, NoopNetworkDriver)
    assert isinstance(driver, AbstractNetworkDriver)


def test_unknown_driver_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no network driver 'neutron'"):
        drivers.load("neutron")
