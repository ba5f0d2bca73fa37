"""Network drivers are found by name through entry points (the configuration's choice)."""

from __future__ import annotations

from pathlib import Path

import pytest

from l3dist.db.session import Database
from l3dist.network import drivers
from l3dist.network.base import AbstractNetworkDriver
from l3dist.network.noop import NoopNetworkDriver


def test_drivers_are_entry_points(tmp_path: Path) -> None:
    assert set(drivers.available()) == {"noop", "static"}  # the lab installs none
    driver = drivers.load("noop", Database(f"sqlite:///{tmp_path / 'x.db'}"))
    assert isinstance(driver, NoopNetworkDriver)
    assert isinstance(driver, AbstractNetworkDriver)


def test_unknown_driver_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no network driver 'neutron'"):
        drivers.load("neutron", Database(f"sqlite:///{tmp_path / 'x.db'}"))
