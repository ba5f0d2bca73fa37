"""VIP reservations (``POST /v2/ports``, what the Octavia provider's create_vip_port makes):
the VIP from the anycast pool before its load balancer, adopted by the create that names it,
released with the load balancer; every refusal names its field and changes nothing."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

import pytest

from tests.api.conftest import ADMIN, ANYCAST_V4, FRONTEND_V4, TENANT_A, TENANT_B, Api

# Octavia's service user, as the provider is configured (roles = admin)
SERVICE = {"X-Project-Id": "service", "X-Roles": "admin"}


def at(index: int) -> str:
    return str(ipaddress.ip_network(ANYCAST_V4.cidr)[index])


def reservation(lb_id: str, **fields: Any) -> dict[str, Any]:
    port = {
        "network_id": ANYCAST_V4.network_id,
        "fixed_ips": [{"subnet_id": ANYCAST_V4.id}],
        "device_id": f"lb-{lb_id}",
        "device_owner": "Octavia",
        "project_id": "project-a",
    }
    port.update(fields)  # fmt: skip
    return {"port": port}


def reserve(api: Api, lb_id: str, headers: dict[str, str] = SERVICE, **fields: Any) -> Any:
    answer = api.post("/v2/ports", reservation(lb_id, **fields), headers)
    assert answer.status_code == 201, answer.text
    return answer.json()["port"]


def test_a_reservation_is_adopted_by_its_load_balancer_and_released_with_it(api: Api) -> None:
    api.active_distributor(api.worker)
    lb_id = str(uuid.uuid4())
    port = reserve(api, lb_id, fixed_ips=[{"subnet_id": ANYCAST_V4.id, "ip_address": at(40)}])
    assert port["fixed_ips"] == [{"subnet_id": ANYCAST_V4.id, "ip_address": at(40)}]
    # The tenant it is for sees it; another does not.
    assert api.get(f"/v2/ports/{port['id']}", TENANT_A).status_code == 200
    assert api.get(f"/v2/ports/{port['id']}", TENANT_B).status_code == 404
    # The tenant's create names the port: its id, subnet and address come from it.
    made = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {"vip_port_id": port["id"]}},
                    TENANT_A).json()["loadbalancer"]  # fmt: skip
    assert (made["id"], made["vip_address"], made["vip_port_id"], made["vip_subnet_id"]) == (
        lb_id, at(40), port["id"], ANYCAST_V4.id)  # fmt: skip
    api.settle()
    shown = api.get(f"/v2/lbaas/loadbalancers/{lb_id}", TENANT_A).json()["loadbalancer"]
    assert shown["provisioning_status"] == "ACTIVE"
    refused = api.delete(f"/v2/ports/{port['id']}", ADMIN)
    assert refused.status_code == 409 and lb_id in refused.text, refused.text
    assert api.delete(f"/v2/lbaas/loadbalancers/{lb_id}", TENANT_A).status_code == 204
    api.settle()
    assert api.get(f"/v2/ports/{port['id']}", ADMIN).status_code == 404

    # The lowest free address when none is asked for; a reservation never used is deleted.
    other = reserve(api, str(uuid.uuid4()))
    assert ipaddress.ip_address(other["fixed_ips"][0]["ip_address"]) in ipaddress.ip_network(
        ANYCAST_V4.cidr
    )
    assert api.delete(f"/v2/ports/{other['id']}", SERVICE).status_code == 204
    assert api.get(f"/v2/ports/{other['id']}", ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("headers", "fields", "status", "field"),
    [
        (TENANT_A, {}, 403, "device_id"),
        (SERVICE, {"device_owner": "compute:nova"}, 400, "device_owner"),
        (SERVICE, {"device_id": "vm-1"}, 400, "device_id"),
        (SERVICE, {"fixed_ips": [{"subnet_id": FRONTEND_V4.id}]}, 400, "network_id"),
        (SERVICE, {"network_id": FRONTEND_V4.network_id,
                   "fixed_ips": [{"subnet_id": FRONTEND_V4.id}]}, 400, "fixed_ips"),
        (SERVICE, {"fixed_ips": [{"subnet_id": ANYCAST_V4.id, "ip_address": "192.0.2.1"}]},
         400, "fixed_ips"),
        (SERVICE, {"fixed_ips": []}, 400, "fixed_ips"),
        (SERVICE, {"color": "blue"}, 400, "color"),
    ],
)  # fmt: skip
def test_bad_reservations_name_the_field_and_change_nothing(
    api: Api, headers: dict[str, str], fields: dict[str, Any], status: int, field: str
) -> None:
    before = api.get("/v2/ports", ADMIN).json()["ports"]
    answer = api.post("/v2/ports", reservation(str(uuid.uuid4()), **fields), headers)
    assert answer.status_code == status, answer.text
    assert field in answer.text, answer.text
    assert api.get("/v2/ports", ADMIN).json()["ports"] == before


def test_a_second_reservation_or_a_mismatched_create_is_refused(api: Api) -> None:
    api.active_distributor(api.worker)
    lb_id = str(uuid.uuid4())
    port = reserve(api, lb_id, fixed_ips=[{"subnet_id": ANYCAST_V4.id, "ip_address": at(41)}])
    again = api.post("/v2/ports", reservation(lb_id), SERVICE)
    assert again.status_code == 409 and "device_id" in again.text, again.text
    taken = api.post("/v2/ports", reservation(str(uuid.uuid4()), fixed_ips=[
        {"subnet_id": ANYCAST_V4.id, "ip_address": at(41)}]), SERVICE)  # fmt: skip
    assert taken.status_code == 409 and "fixed_ips" in taken.text, taken.text
    for body, field in (
        ({"vip_port_id": port["id"], "vip_address": at(42)}, "vip_address"),
        ({"vip_port_id": port["id"], "id": str(uuid.uuid4())}, "id"),
        ({"vip_port_id": str(uuid.uuid4())}, "vip_port_id"),
    ):
        body = {**body, "project_id": "project-a"}
        refused = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": body}, ADMIN)
        assert refused.status_code == 400 and field in refused.text, (body, refused.text)
    # Another project's create cannot take it.
    theirs = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": {"vip_port_id": port["id"]}},
                      TENANT_B)  # fmt: skip
    assert theirs.status_code == 400 and "vip_port_id" in theirs.text, theirs.text
    # The refusals kept the reservation; nothing else was made.
    assert api.get(f"/v2/ports/{port['id']}", ADMIN).status_code == 200
    assert api.get("/v2/lbaas/loadbalancers", ADMIN).json()["loadbalancers"] == []
