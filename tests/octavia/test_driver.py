"""The provider driver driven as Octavia drives it (octavia-lib data models, Octavia's ids),
against the real l3dist app and worker (noop compute and amphora drivers): no lab."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import pytest
from octavia_lib.api.drivers import data_models as dm
from octavia_lib.api.drivers import exceptions as exc
from sqlalchemy import select

from l3dist.db.models import WorkerJob
from l3dist_octavia.config import Settings
from l3dist_octavia.driver import L3distProviderDriver
from tests.api.conftest import ANYCAST_V4, MEMBER_V4, Api

from .conftest import AppTransport


def new_id() -> str:
    return str(uuid.uuid4())


def address(cidr: str, index: int) -> str:
    return str(ipaddress.ip_network(cidr)[index])


def octavia_lb(**fields: Any) -> dm.LoadBalancer:
    """A load balancer as Octavia hands it over: its id and VIP subnet and address (no VIP
    port: test_create_vip_port... hands over the one create_vip_port made)."""
    values: dict[str, Any] = {
        "loadbalancer_id": new_id(),
        "project_id": "project-a",
        "name": "web",
        "admin_state_up": True,
        "vip_subnet_id": ANYCAST_V4.id,
        "vip_address": address(ANYCAST_V4.cidr, 50),
        "flavor": {},
    }
    values.update(fields)
    return dm.LoadBalancer(**values)


def show(api: Api, path: str, key: str) -> dict[str, Any]:
    answer = api.get(path)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()[key])


def test_a_whole_tree_keeps_octavias_ids_and_cascade_delete_leaves_nothing(
    api: Api, driver: L3distProviderDriver
) -> None:
    distributor = api.active_distributor(api.worker)
    lb = octavia_lb(flavor={"amphora_count": 3, "distributor": "fabric"})
    driver.loadbalancer_create(lb)
    made = show(api, f"/v2/lbaas/loadbalancers/{lb.loadbalancer_id}", "loadbalancer")
    assert made["project_id"] == "project-a" and made["provider"] == "l3dist"
    assert made["topology"] == "ACTIVE_ACTIVE" and made["amphora_count"] == 3
    assert made["distributor_id"] == distributor["id"]
    assert made["vip_address"] == lb.vip_address
    api.settle()

    listener = dm.Listener(listener_id=new_id(), loadbalancer_id=lb.loadbalancer_id,
                           protocol="HTTP", protocol_port=80, name="http",
                           insert_headers={"X-Forwarded-For": "true"},
                           l7policies=[], sni_container_refs=[])  # fmt: skip
    driver.listener_create(listener)
    api.settle()
    pool = dm.Pool(pool_id=new_id(), loadbalancer_id=lb.loadbalancer_id,
                   listener_id=listener.listener_id, protocol="HTTP",
                   lb_algorithm="ROUND_ROBIN",
                   session_persistence={"type": "HTTP_COOKIE", "cookie_name": None})  # fmt: skip
    driver.pool_create(pool)
    api.settle()
    assert (
        show(api, f"/v2/lbaas/listeners/{listener.listener_id}", "listener")["default_pool_id"]
        == pool.pool_id
    )
    members = [
        dm.Member(
            member_id=new_id(),
            pool_id=pool.pool_id,
            address=address(MEMBER_V4.cidr, 10 + i),
            protocol_port=8080,
            weight=1 + i,
            subnet_id=MEMBER_V4.id,
        )
        for i in range(2)
    ]
    driver.member_create(members[0])
    api.settle()
    # The batch: the first member updated, a second and third created, none left out.
    third = dm.Member(member_id=new_id(), pool_id=pool.pool_id,
                      address=address(MEMBER_V4.cidr, 30), protocol_port=8080)  # fmt: skip
    members[0].weight = 9
    driver.member_batch_update(pool.pool_id, [*members, third])
    api.settle()
    listed = api.get(f"/v2/lbaas/pools/{pool.pool_id}/members").json()["members"]
    assert {m["id"] for m in listed} == {members[0].member_id, members[1].member_id,
                                         third.member_id}  # fmt: skip
    assert next(m for m in listed if m["id"] == members[0].member_id)["weight"] == 9
    # Then one left out: deleted.
    driver.member_batch_update(pool.pool_id, members)
    api.settle()
    listed = api.get(f"/v2/lbaas/pools/{pool.pool_id}/members").json()["members"]
    assert {m["id"] for m in listed} == {m.member_id for m in members}

    hm = dm.HealthMonitor(healthmonitor_id=new_id(), pool_id=pool.pool_id, type="HTTP",
                          delay=5, timeout=3, max_retries=3, url_path="/health",
                          http_method="GET", expected_codes="200")  # fmt: skip
    driver.health_monitor_create(hm)
    api.settle()
    for path, key in (
        (f"/v2/lbaas/loadbalancers/{lb.loadbalancer_id}", "loadbalancer"),
        (f"/v2/lbaas/listeners/{listener.listener_id}", "listener"),
        (f"/v2/lbaas/pools/{pool.pool_id}", "pool"),
        (f"/v2/lbaas/healthmonitors/{hm.healthmonitor_id}", "healthmonitor"),
    ):
        assert show(api, path, key)["provisioning_status"] == "ACTIVE", path

    # Updates: Octavia passes the old object and the changed fields.
    driver.loadbalancer_update(lb, dm.LoadBalancer(loadbalancer_id=lb.loadbalancer_id,
                                                   name="web2", description="d"))  # fmt: skip
    api.settle()
    driver.listener_update(listener, dm.Listener(connection_limit=100))
    api.settle()
    driver.pool_update(pool, dm.Pool(lb_algorithm="LEAST_CONNECTIONS"))
    api.settle()
    driver.member_update(members[1], dm.Member(weight=50, admin_state_up=False))
    api.settle()
    driver.health_monitor_update(hm, dm.HealthMonitor(delay=10, max_retries_down=2))
    api.settle()
    lb_shown = show(api, f"/v2/lbaas/loadbalancers/{lb.loadbalancer_id}", "loadbalancer")
    assert (lb_shown["name"], lb_shown["description"]) == ("web2", "d")
    assert lb_shown["provisioning_status"] == "ACTIVE"
    assert (
        show(api, f"/v2/lbaas/listeners/{listener.listener_id}", "listener")["connection_limit"]
        == 100
    )
    assert show(api, f"/v2/lbaas/pools/{pool.pool_id}", "pool")["lb_algorithm"] == (
        "LEAST_CONNECTIONS"
    )
    member = show(api, f"/v2/lbaas/pools/{pool.pool_id}/members/{members[1].member_id}", "member")
    assert (member["weight"], member["admin_state_up"]) == (50, False)
    shown_hm = show(api, f"/v2/lbaas/healthmonitors/{hm.healthmonitor_id}", "healthmonitor")
    assert (shown_hm["delay"], shown_hm["max_retries_down"]) == (10, 2)

    driver.loadbalancer_failover(lb.loadbalancer_id)
    api.settle()
    assert (
        show(api, f"/v2/lbaas/loadbalancers/{lb.loadbalancer_id}", "loadbalancer")[
            "provisioning_status"
        ]
        == "ACTIVE"
    )

    driver.loadbalancer_delete(lb, cascade=True)
    api.settle()
    snapshot = api.snapshot()
    for key in ("loadbalancers", "listeners", "pools", "healthmonitors", "amphorae"):
        assert snapshot[key] == [], key
    assert snapshot["members"] == {}
    # Octavia may repeat a delete: an object l3dist no longer has is not an error.
    driver.loadbalancer_delete(lb, cascade=True)


def test_children_deleted_one_by_one(api: Api, driver: L3distProviderDriver) -> None:
    api.active_distributor(api.worker)
    lb = octavia_lb(flavor={"distributor": "fabric"})
    driver.loadbalancer_create(lb)
    api.settle()
    assert (
        show(api, f"/v2/lbaas/loadbalancers/{lb.loadbalancer_id}", "loadbalancer")["amphora_count"]
        == 2
    )  # the driver's default
    pool = dm.Pool(pool_id=new_id(), loadbalancer_id=lb.loadbalancer_id, protocol="TCP",
                   lb_algorithm="SOURCE_IP")  # fmt: skip
    driver.pool_create(pool)
    api.settle()
    member = dm.Member(member_id=new_id(), pool_id=pool.pool_id,
                       address=address(MEMBER_V4.cidr, 10), protocol_port=22)  # fmt: skip
    driver.member_create(member)
    api.settle()
    hm = dm.HealthMonitor(healthmonitor_id=new_id(), pool_id=pool.pool_id, type="TCP",
                          delay=5, timeout=3, max_retries=3)  # fmt: skip
    driver.health_monitor_create(hm)
    api.settle()
    for call in (
        lambda: driver.health_monitor_delete(hm),
        lambda: driver.member_delete(member),
        lambda: driver.pool_delete(pool),
    ):
        call()
        api.settle()
    assert api.get(f"/v2/lbaas/pools/{pool.pool_id}").status_code == 404
    # Not cascading with a child left: l3dist's refusal reaches Octavia by name.
    listener = dm.Listener(listener_id=new_id(), loadbalancer_id=lb.loadbalancer_id,
                           protocol="TCP", protocol_port=443)  # fmt: skip
    driver.listener_create(listener)
    api.settle()
    with pytest.raises(exc.UnsupportedOptionError, match="cascade"):
        driver.loadbalancer_delete(lb)
    driver.listener_delete(listener)
    api.settle()
    driver.loadbalancer_delete(lb)
    api.settle()
    assert api.get(f"/v2/lbaas/loadbalancers/{lb.loadbalancer_id}").status_code == 404


def test_flavors_are_validated_against_l3dist(api: Api, driver: L3distProviderDriver) -> None:
    distributor = api.active_distributor(api.worker)
    assert set(driver.get_supported_flavor_metadata()) == {
        "amphora_count",
        "distributor",
        "speaker_driver",
    }
    driver.validate_flavor({})
    driver.validate_flavor({"speaker_driver": "exabgp"})
    driver.validate_flavor({"amphora_count": 4})
    driver.validate_flavor({"amphora_count": 1, "distributor": "fabric"})
    driver.validate_flavor({"distributor": distributor["id"]})
    for bad, key in (
        ({"amphora_count": 0}, "amphora_count"),
        ({"amphora_count": "2"}, "amphora_count"),
        ({"amphora_count": True}, "amphora_count"),
        ({"distributor": ""}, "distributor"),
        ({"speaker_driver": ""}, "speaker_driver"),
        ({"speaker_driver": 7}, "speaker_driver"),
        ({"loadbalancer_topology": "ACTIVE_STANDBY"}, "loadbalancer_topology"),
    ):
        with pytest.raises(exc.UnsupportedOptionError) as refused:
            driver.validate_flavor(bad)
        assert key in refused.value.user_fault_string, bad
    with pytest.raises(exc.NotFound) as missing:
        driver.validate_flavor({"distributor": "nowhere"})
    assert "distributor" in missing.value.user_fault_string
    # The flavor's speaker goes with the load balancer; one l3dist does not have is its 400.
    lb = octavia_lb(flavor={"distributor": "fabric", "speaker_driver": "exabgp"})
    driver.loadbalancer_create(lb)
    made = show(api, f"/v2/lbaas/loadbalancers/{lb.loadbalancer_id}", "loadbalancer")
    assert made["speaker_driver"] == "exabgp"
    with pytest.raises(exc.UnsupportedOptionError, match="speaker_driver"):
        driver.loadbalancer_create(octavia_lb(vip_address=address(ANYCAST_V4.cidr, 51),
                                              flavor={"speaker_driver": "gobgp"}))  # fmt: skip
    api.settle()
    driver.loadbalancer_delete(lb)
    api.settle()
    # A load balancer with a bad flavor is refused before l3dist is asked for anything.
    with pytest.raises(exc.UnsupportedOptionError, match="amphora_count"):
        driver.loadbalancer_create(octavia_lb(flavor={"amphora_count": -1}))
    assert api.get("/v2/lbaas/loadbalancers").json()["loadbalancers"] == []


def test_the_default_distributor_comes_from_the_settings(api: Api) -> None:
    distributor = api.active_distributor(api.worker)
    settings = Settings(api_url="http://l3dist.test", default_distributor="fabric",
                        default_amphora_count=4)  # fmt: skip
    driver = L3distProviderDriver(settings, transport=AppTransport(api))
    lb = octavia_lb()
    driver.loadbalancer_create(lb)
    made = show(api, f"/v2/lbaas/loadbalancers/{lb.loadbalancer_id}", "loadbalancer")
    assert (made["distributor_id"], made["amphora_count"]) == (distributor["id"], 4)
    driver.client.close()


def test_what_l3dist_lacks_is_refused_by_name(api: Api, driver: L3distProviderDriver) -> None:
    for call, option in (
        (
            lambda: driver.create_vip_port(
                new_id(), "p", {"vip_subnet_id": ANYCAST_V4.id}, [{"subnet_id": ANYCAST_V4.id}]
            ),
            "additional_vips",
        ),
        (
            lambda: driver.create_vip_port(new_id(), "p", {"vip_port_id": new_id()}, []),
            "vip_port_id",
        ),
        (lambda: driver.l7policy_create(dm.L7Policy(l7policy_id=new_id())), "l7policy"),
        (lambda: driver.l7policy_update(dm.L7Policy(), dm.L7Policy()), "l7policy"),
        (lambda: driver.l7policy_delete(dm.L7Policy()), "l7policy"),
        (lambda: driver.l7rule_create(dm.L7Rule()), "l7rule"),
        (lambda: driver.l7rule_update(dm.L7Rule(), dm.L7Rule()), "l7rule"),
        (lambda: driver.l7rule_delete(dm.L7Rule()), "l7rule"),
        (lambda: driver.validate_availability_zone({"compute_zone": "az1"}), "compute_zone"),
        (
            lambda: driver.loadbalancer_create(octavia_lb(additional_vips=[{"subnet_id": "x"}])),
            "additional_vips",
        ),
    ):
        with pytest.raises(exc.UnsupportedOptionError) as refused:
            call()
        assert option in refused.value.user_fault_string
    assert driver.get_supported_availability_zone_metadata() == {}
    driver.validate_availability_zone({})


def test_l3dists_refusals_carry_its_message(api: Api, driver: L3distProviderDriver) -> None:
    """An address outside the anycast pool: l3dist's 400 names the field, and Octavia's user
    reads l3dist's reason."""
    api.active_distributor(api.worker)
    lb = octavia_lb(vip_subnet_id=MEMBER_V4.id, vip_address=address(MEMBER_V4.cidr, 5),
                    flavor={"distributor": "fabric"})  # fmt: skip
    with pytest.raises(exc.UnsupportedOptionError) as refused:
        driver.loadbalancer_create(lb)
    assert "role anycast" in refused.value.user_fault_string
    good = octavia_lb(flavor={"distributor": "fabric"})
    driver.loadbalancer_create(good)
    again = octavia_lb(loadbalancer_id=good.loadbalancer_id,
                       vip_address=address(ANYCAST_V4.cidr, 60),
                       flavor={"distributor": "fabric"})  # fmt: skip
    with pytest.raises(exc.Conflict, match="already taken"):
        driver.loadbalancer_create(again)
    with pytest.raises(exc.NotFound):
        driver.listener_create(dm.Listener(listener_id=new_id(), loadbalancer_id=new_id(),
                                           protocol="TCP", protocol_port=80))  # fmt: skip


def test_create_vip_port_reserves_the_vip_that_the_load_balancer_adopts(
    api: Api, driver: L3distProviderDriver
) -> None:
    """Octavia's order: create_vip_port, then loadbalancer_create with the port it returned;
    the VIP comes from l3dist's anycast pool, and goes with the load balancer."""
    api.active_distributor(api.worker)
    lb_id = new_id()
    # A network only: its anycast subnet, the lowest free address.
    vip, extra = driver.create_vip_port(lb_id, "project-a",
                                        {"vip_network_id": ANYCAST_V4.network_id}, [])  # fmt: skip
    assert extra == [] and vip["vip_subnet_id"] == ANYCAST_V4.id
    assert ipaddress.ip_address(vip["vip_address"]) in ipaddress.ip_network(ANYCAST_V4.cidr)
    port = show(api, f"/v2/ports/{vip['vip_port_id']}", "port")
    assert (port["device_id"], port["device_owner"]) == (f"lb-{lb_id}", "Octavia")
    assert port["project_id"] == "project-a"
    driver.loadbalancer_create(octavia_lb(loadbalancer_id=lb_id, vip_subnet_id=vip["vip_subnet_id"],
                                          vip_address=vip["vip_address"],
                                          vip_port_id=vip["vip_port_id"]))  # fmt: skip
    made = show(api, f"/v2/lbaas/loadbalancers/{lb_id}", "loadbalancer")
    assert (made["vip_address"], made["vip_port_id"]) == (vip["vip_address"], vip["vip_port_id"])
    api.settle()
    assert show(api, f"/v2/lbaas/loadbalancers/{lb_id}", "loadbalancer")["provisioning_status"] == (
        "ACTIVE"
    )
    driver.loadbalancer_delete(octavia_lb(loadbalancer_id=lb_id), cascade=True)
    api.settle()
    assert api.get(f"/v2/ports/{vip['vip_port_id']}").status_code == 404, "released with it"

    # A load balancer l3dist refuses after the reservation (another address than the port's):
    # Octavia rolls back, and the driver released the reservation.
    lb_id = new_id()
    wanted = address(ANYCAST_V4.cidr, 77)
    vip, _ = driver.create_vip_port(lb_id, "project-a", {"vip_subnet_id": ANYCAST_V4.id,
                                                         "vip_address": wanted}, [])  # fmt: skip
    assert vip["vip_address"] == wanted
    with pytest.raises(exc.UnsupportedOptionError, match="vip_address"):
        driver.loadbalancer_create(octavia_lb(loadbalancer_id=lb_id,
                                              vip_address=address(ANYCAST_V4.cidr, 78),
                                              vip_port_id=vip["vip_port_id"]))  # fmt: skip
    assert api.get(f"/v2/ports/{vip['vip_port_id']}").status_code == 404


def test_octavias_fully_populated_create_is_one_l3dist_create(
    api: Api, driver: L3distProviderDriver
) -> None:
    """Octavia hands a fully populated create over as one load balancer whose listeners carry
    their default pools and whose ``pools`` lists every pool (the default ones again): one
    l3dist create, one job, every object under Octavia's id, ACTIVE."""
    api.active_distributor(api.worker)
    lb_id, listener_id, pool_id, spare_id = new_id(), new_id(), new_id(), new_id()
    members = [dm.Member(member_id=new_id(), pool_id=pool_id, protocol_port=8080,
                         address=address(MEMBER_V4.cidr, 10 + i), subnet_id=MEMBER_V4.id)
               for i in range(2)]  # fmt: skip
    monitor = dm.HealthMonitor(healthmonitor_id=new_id(), pool_id=pool_id, type="TCP",
                               delay=3, timeout=2, max_retries=2)  # fmt: skip
    pool = dm.Pool(pool_id=pool_id, loadbalancer_id=lb_id, listener_id=listener_id,
                   protocol="TCP", lb_algorithm="ROUND_ROBIN", members=members,
                   healthmonitor=monitor)  # fmt: skip
    spare = dm.Pool(pool_id=spare_id, loadbalancer_id=lb_id, protocol="TCP",
                    lb_algorithm="SOURCE_IP", members=[])  # fmt: skip
    listener = dm.Listener(listener_id=listener_id, loadbalancer_id=lb_id, protocol="TCP",
                           protocol_port=80, default_pool=pool, default_pool_id=pool_id,
                           l7policies=[], sni_container_refs=[])  # fmt: skip
    lb = octavia_lb(loadbalancer_id=lb_id, flavor={"amphora_count": 2, "distributor": "fabric"},
                    listeners=[listener], pools=[pool, spare])  # fmt: skip
    driver.loadbalancer_create(lb)
    api.settle()
    assert (
        show(api, f"/v2/lbaas/loadbalancers/{lb_id}", "loadbalancer")["provisioning_status"]
        == "ACTIVE"
    )
    assert show(api, f"/v2/lbaas/listeners/{listener_id}", "listener")["default_pool_id"] == pool_id
    for path, key in ((f"/v2/lbaas/pools/{pool_id}", "pool"), (f"/v2/lbaas/pools/{spare_id}",
                      "pool"), (f"/v2/lbaas/healthmonitors/{monitor.healthmonitor_id}",
                      "healthmonitor")):  # fmt: skip
        assert show(api, path, key)["provisioning_status"] == "ACTIVE", path
    listed = api.get(f"/v2/lbaas/pools/{pool_id}/members").json()["members"]
    assert {m["id"] for m in listed} == {m.member_id for m in members}
    with api.db.session() as session:
        flows = session.scalars(select(WorkerJob.flow).where(WorkerJob.target_id == lb_id))
        assert list(flows) == ["create_load_balancer"]
