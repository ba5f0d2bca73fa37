"""The static network driver's update_vip and failover_preparation (SQLite and PostgreSQL):
the records they write. The VIP port follows the load balancer (ACTIVE while it is enabled and
has amphorae, DOWN and admin down when disabled); a failover's preparation retires the old
amphora's front-end port, and update_vip with the load balancer as it is after a revert gives
it back."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from l3dist.db.session import Database, upgrade
from l3dist.network.exceptions import PortNotFound
from l3dist.network.static import OWNER_FRONTEND, StaticNetworkDriver
from l3dist_lab.catalog import lab_catalog
from l3dist_lab.networks import register_lab_networks

CATALOG = lab_catalog()


def frontend_port(driver: StaticNetworkDriver, amphora_id: str) -> SimpleNamespace:
    [port] = [p for p in driver.ports_of(amphora_id) if p.device_owner == OWNER_FRONTEND]
    return SimpleNamespace(status=port.status, admin=port.admin_state_up)


def test_update_vip_and_failover_preparation_write_the_port_states(db_url: str) -> None:
    upgrade(db_url)
    db = Database(db_url)
    driver = StaticNetworkDriver(db)
    register_lab_networks(driver)
    amphorae = [SimpleNamespace(id=f"amp-{i}") for i in range(3)]
    vip = SimpleNamespace(ip_address=None, subnet_id=CATALOG.subnet_by_name("anycast-net-v4").id)
    lb = SimpleNamespace(id="lb-1", topology="ACTIVE_ACTIVE", vip=vip, amphorae=amphorae[:2],
                         enabled=True)  # fmt: skip
    info = driver.allocate_vip(lb)
    vip.ip_address = info.ip_address
    assert driver.get_port(info.port_id).status == "DOWN", "a reservation before any amphora"
    driver.plug_vip(lb, vip)

    driver.update_vip(lb)
    assert driver.get_port(info.port_id).status == "ACTIVE"
    assert [frontend_port(driver, a.id).status for a in lb.amphorae] == ["ACTIVE", "ACTIVE"]

    # amp-0 fails: prepared (its next hop retired), amp-2 replaces it.
    driver.failover_preparation(amphorae[0])
    assert frontend_port(driver, "amp-0").status == "DOWN"
    assert frontend_port(driver, "amp-1").status == "ACTIVE", "only the failed amphora's"
    # The failover reverts: the load balancer as it still is gets its port back.
    driver.update_vip(lb)
    assert frontend_port(driver, "amp-0").status == "ACTIVE"

    lb.enabled = False
    driver.update_vip(lb)
    port = driver.get_port(info.port_id)
    assert (port.status, port.admin_state_up) == ("DOWN", False)
    lb.enabled, lb.amphorae = True, []
    driver.update_vip(lb)
    port = driver.get_port(info.port_id)
    assert (port.status, port.admin_state_up) == ("DOWN", True), "no amphora: nothing serves it"

    with pytest.raises(PortNotFound):
        driver.failover_preparation(SimpleNamespace(id="amp-never-built"))
    db.engine.dispose()
