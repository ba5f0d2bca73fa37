"""Objects created under an id the caller chose (an admin or a service: Octavia's provider
driver keeps Octavia's ids), and the batch update of a pool's members."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from .conftest import ADMIN, ANYCAST_V4, MEMBER_V4, TENANT_A, Api

SERVICE = {"X-Project-Id": "service", "X-Roles": "member,service"}


def member_address(index: int) -> str:
    return str(ipaddress.ip_network(MEMBER_V4.cidr)[10 + index])


def tree(api: Api, ids: dict[str, str]) -> dict[str, Any]:
    lb = api.create_lb(ADMIN, id=ids["lb"], project_id="project-a")
    listener = api.create("/v2/lbaas/listeners", "listener", ADMIN, id=ids["listener"],
                          loadbalancer_id=lb["id"], protocol="TCP", protocol_port=80)  # fmt: skip
    pool = api.create("/v2/lbaas/pools", "pool", ADMIN, id=ids["pool"],
                      listener_id=listener["id"], protocol="TCP",
                      lb_algorithm="ROUND_ROBIN")  # fmt: skip
    member = api.create(f"/v2/lbaas/pools/{pool['id']}/members", "member", ADMIN,
                        id=ids["member"], address=member_address(0),
                        protocol_port=8080)  # fmt: skip
    hm = api.create("/v2/lbaas/healthmonitors", "healthmonitor", ADMIN, id=ids["hm"],
                    pool_id=pool["id"], type="TCP", delay=5, timeout=3,
                    max_retries=3)  # fmt: skip
    return {"lb": lb, "listener": listener, "pool": pool, "member": member, "hm": hm}


def test_every_create_keeps_the_chosen_id(api: Api) -> None:
    ids = {k: str(uuid.uuid4()) for k in ("lb", "listener", "pool", "member", "hm")}
    made = tree(api, ids)
    for key, obj in made.items():
        assert obj["id"] == ids[key]
    assert made["lb"]["project_id"] == "project-a"
    shown = api.get(f"/v2/lbaas/loadbalancers/{ids['lb']}", TENANT_A).json()["loadbalancer"]
    assert shown["provisioning_status"] == "ACTIVE"
    member = api.get(f"/v2/lbaas/pools/{ids['pool']}/members/{ids['member']}").json()["member"]
    assert member["provisioning_status"] == "ACTIVE"


def test_a_taken_id_is_409_naming_it(api: Api) -> None:
    lb_id = str(uuid.uuid4())
    api.create_lb(ADMIN, id=lb_id)
    again = api.post("/v2/lbaas/loadbalancers",
                     {"loadbalancer": {"vip_subnet_id": ANYCAST_V4.id, "id": lb_id}})  # fmt: skip
    assert again.status_code == 409, again.text
    assert again.json()["field"] == "id"
    listener = api.create("/v2/lbaas/listeners", "listener", ADMIN, loadbalancer_id=lb_id,
                          protocol="TCP", protocol_port=80)  # fmt: skip
    clash = api.post("/v2/lbaas/listeners", {"listener": {
        "id": listener["id"], "loadbalancer_id": lb_id, "protocol": "TCP",
        "protocol_port": 81}})  # fmt: skip
    assert clash.status_code == 409, clash.text
    assert clash.json()["field"] == "id"


def test_a_tenant_cannot_choose_an_id_and_bad_ids_are_400(api: Api) -> None:
    body = {"vip_subnet_id": ANYCAST_V4.id, "id": str(uuid.uuid4())}
    refused = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": body}, TENANT_A)
    assert refused.status_code == 403, refused.text
    assert refused.json()["field"] == "id"
    for bad in ("not-a-uuid", 12, ""):
        bad_body = {"vip_subnet_id": ANYCAST_V4.id, "id": bad}
        answer = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": bad_body})
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "id"
    assert api.get("/v2/lbaas/loadbalancers").json()["loadbalancers"] == []


def test_a_service_may_choose_an_id(api: Api) -> None:
    lb_id = str(uuid.uuid4())
    made = api.post("/v2/lbaas/loadbalancers",
                    {"loadbalancer": {"vip_subnet_id": ANYCAST_V4.id, "id": lb_id}},
                    SERVICE)  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["loadbalancer"]["id"] == lb_id


def test_member_batch_update_creates_updates_and_deletes_in_one_change(api: Api) -> None:
    ids = {k: str(uuid.uuid4()) for k in ("lb", "listener", "pool", "member", "hm")}
    made = tree(api, ids)
    pool_id = made["pool"]["id"]
    new_id = str(uuid.uuid4())
    batch = {"members": [
        {"id": new_id, "address": member_address(1), "protocol_port": 8080, "weight": 5},
        {"id": str(uuid.uuid4()), "address": member_address(2),
         "protocol_port": 8080},
    ]}  # fmt: skip
    answer = api.put(f"/v2/lbaas/pools/{pool_id}/members", batch)
    assert answer.status_code == 202, answer.text
    lb = api.get(f"/v2/lbaas/loadbalancers/{ids['lb']}").json()["loadbalancer"]
    assert lb["provisioning_status"] == "PENDING_UPDATE"
    api.settle()
    members = api.get(f"/v2/lbaas/pools/{pool_id}/members").json()["members"]
    assert sorted(m["address"] for m in members) == [member_address(1), member_address(2)]
    assert {m["provisioning_status"] for m in members} == {"ACTIVE"}
    assert next(m for m in members if m["id"] == new_id)["weight"] == 5
    # Updated in place (matched by id), additive_only keeps the unlisted one.
    keep = {"members": [{"id": new_id, "address": member_address(1), "protocol_port": 8080,
                         "weight": 7}]}  # fmt: skip
    answer = api.put(f"/v2/lbaas/pools/{pool_id}/members?additive_only=true", keep)
    assert answer.status_code == 202, answer.text
    api.settle()
    members = api.get(f"/v2/lbaas/pools/{pool_id}/members").json()["members"]
    assert len(members) == 2
    assert next(m for m in members if m["id"] == new_id)["weight"] == 7
    # Twice the same address:port is 400 and changes nothing.
    twice = {"members": [{"address": member_address(3), "protocol_port": 80}] * 2}
    answer = api.put(f"/v2/lbaas/pools/{pool_id}/members", twice)
    assert answer.status_code == 400, answer.text
    assert api.get(f"/v2/lbaas/pools/{pool_id}/members").json()["members"] == members


def test_networks_and_subnets_take_neutrons_ids(api: Api) -> None:
    """With Octavia, the VIP subnet Octavia names must be l3dist's anycast subnet under the
    same id: the operator defines it with Neutron's ids."""
    net_id, subnet_id = str(uuid.uuid4()), str(uuid.uuid4())
    net = api.post("/v2.0/networks", {"network": {"id": net_id, "name": "neutron-anycast"}})
    assert net.status_code == 201, net.text
    assert net.json()["network"]["id"] == net_id
    body = {"id": subnet_id, "name": "neutron-anycast-v6", "network_id": net_id,
            "cidr": "2001:db8:7::/64", "role": "anycast"}  # fmt: skip
    subnet = api.post("/v2.0/subnets", {"subnet": body})
    assert subnet.status_code == 201, subnet.text
    assert subnet.json()["subnet"]["id"] == subnet_id
    for path, kind, again in (
        ("/v2.0/networks", "network", {"id": net_id, "name": "other"}),
        ("/v2.0/subnets", "subnet", {**body, "name": "other", "cidr": "2001:db8:8::/64"}),
    ):
        taken = api.post(path, {kind: again})
        assert taken.status_code == 409, taken.text
        assert taken.json()["field"] == "id"
    bad = api.post("/v2.0/networks", {"network": {"id": "neutron", "name": "bad"}})
    assert bad.status_code == 400 and bad.json()["field"] == "id"
    lb = api.create_lb(vip_subnet_id=subnet_id)
    assert lb["vip_subnet_id"] == subnet_id and lb["vip_network_id"] == net_id
