"""Floating IPs (Neutron's ``/v2.0/floatingips``) on load balancer VIPs, the ports view they are
bound through, and the virtual-ip objects they bind to.

An association only records the binding and queues ``update_floating_ips`` on the load balancer
(asserted here as the worker_job row the API wrote); the worker's flow is not run after one.
Every refusal is a 4xx naming the field that changes nothing: no floating IP row, no port (the
address reservation), no job.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select

from l3dist.db import models
from l3dist.network.catalog import stable_id

from .conftest import ADMIN, ANYCAST_V4, ANYCAST_V6, READER_A, TENANT_A, TENANT_B, Api, Server

EXT_NET = stable_id("ext-net")
EXT_V4, EXT_V6 = stable_id("ext-net-v4"), stable_id("ext-net-v6")
POOL = ipaddress.ip_network("198.19.100.0/24")
PATH = "/v2/floatingips"
FLOW = "update_floating_ips"


def _create(api: Api, headers: dict[str, str] = TENANT_A, **fields: Any) -> Any:
    return api.post(PATH, {"floatingip": {"floating_network_id": EXT_NET, **fields}}, headers)


def _made(api: Api, headers: dict[str, str] = TENANT_A, **fields: Any) -> dict[str, Any]:
    response = _create(api, headers, **fields)
    assert response.status_code == 201, response.text
    return dict(response.json()["floatingip"])


def _put(api: Api, fip_id: str, headers: dict[str, str] = TENANT_A, **fields: Any) -> Any:
    return api.put(f"{PATH}/{fip_id}", {"floatingip": fields}, headers)


def _jobs(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    """Every floating IP job queued: (flow, target, arguments), sorted (the jobs of one
    request may share a timestamp)."""
    with api.db.session(writer=False) as s:
        rows = s.scalars(
            select(models.WorkerJob)
            .where(models.WorkerJob.flow == FLOW)
            .order_by(models.WorkerJob.created_at, models.WorkerJob.id)
        )
        return sorted(((j.flow, j.target_id, dict(j.arguments)) for j in rows), key=repr)


def _counts(api: Api) -> tuple[int, ...]:
    """Floating IP rows, ports, jobs, virtual-ips: what a refusal must leave as it was."""
    with api.db.session(writer=False) as s:
        return tuple(
            int(s.scalar(select(func.count()).select_from(table)) or 0)
            for table in (models.FloatingIp, models.NetPort, models.WorkerJob, models.VirtualIp)
        )


def _rows(api: Api) -> list[tuple[Any, ...]]:
    with api.db.session(writer=False) as s:
        return sorted(
            (f.id, f.port_id, f.fixed_ip_address, f.virtual_ip_id, f.description, f.updated_at)
            for f in s.scalars(select(models.FloatingIp))
        )


def _add(lb: dict[str, Any], address: str) -> tuple[str, str, dict[str, Any]]:
    return (FLOW, lb["id"], {"add": [address], "remove": []})


def _remove(lb: dict[str, Any], address: str) -> tuple[str, str, dict[str, Any]]:
    return (FLOW, lb["id"], {"add": [], "remove": [address]})


def test_an_unbound_floating_ip_is_created_shown_listed_updated_and_deleted(api: Api) -> None:
    fip = _made(api, description="web")
    address = ipaddress.ip_address(fip["floating_ip_address"])
    assert address in POOL
    assert fip["status"] == "DOWN" and fip["project_id"] == fip["tenant_id"] == "project-a"
    assert fip["port_id"] is fip["fixed_ip_address"] is fip["virtual_ip_id"] is None
    assert fip["router_id"] is None and fip["description"] == "web"
    assert fip["tags"] == [] and fip["port_forwardings"] == [] and fip["dns_name"] == ""
    assert fip["created_at"] and "revision_number" in fip and "qos_policy_id" in fip
    with api.db.session(writer=False) as s:
        row = s.get(models.FloatingIp, fip["id"])
        assert row is not None and row.floating_subnet_id == EXT_V4
        port = s.get(models.NetPort, row.floating_port_id)
        assert port is not None and port.device_owner == "network:floatingip"
        assert port.device_id == f"floatingip-{fip['id']}"
        assert [a.ip_address for a in port.fixed_ips] == [str(address)]
    assert _jobs(api) == []  # nothing to announce

    shown = api.get(f"/v2.0/floatingips/{fip['id']}", TENANT_A)
    assert shown.status_code == 200 and shown.json()["floatingip"] == fip
    listed = api.get(PATH, TENANT_A, params={"floating_ip_address": str(address)}).json()
    assert [f["id"] for f in listed["floatingips"]] == [fip["id"]]
    assert api.get(PATH, TENANT_A, params={"status": "ACTIVE"}).json()["floatingips"] == []
    assert len(api.get(PATH, TENANT_A, params={"floating_network_id": EXT_NET}).json()[
        "floatingips"]) == 1  # fmt: skip

    reader = api.post(PATH, {"floatingip": {"floating_network_id": EXT_NET}}, READER_A)
    assert reader.status_code == 403, reader.text
    alias = api.post(
        "/v2.0/floatingips",
        {"floatingip": {"floating_network_id": EXT_NET, "tenant_id": "project-a"}},
        TENANT_A,
    )
    assert alias.status_code == 201 and alias.json()["floatingip"]["project_id"] == "project-a"
    explicit = _made(api, floating_ip_address="198.19.100.77", subnet_id=EXT_V4)
    assert explicit["floating_ip_address"] == "198.19.100.77"

    updated = _put(api, fip["id"], description="renamed")
    assert updated.status_code == 200, updated.text
    assert updated.json()["floatingip"]["description"] == "renamed"
    assert _jobs(api) == []

    assert api.delete(f"{PATH}/{fip['id']}", TENANT_A).status_code == 204
    assert api.get(f"{PATH}/{fip['id']}", TENANT_A).status_code == 404
    with api.db.session(writer=False) as s:
        assert s.scalar(select(models.NetPort).where(
            models.NetPort.device_id == f"floatingip-{fip['id']}")) is None  # fmt: skip
    assert _made(api)["floating_ip_address"] == str(address)  # the address is free again


def test_an_association_binds_to_the_virtual_ip_and_queues_exactly_its_job(api: Api) -> None:
    lb = api.create_lb(TENANT_A)
    fip = _made(api, port_id=lb["vip_port_id"])
    address = fip["floating_ip_address"]
    assert fip["port_id"] == lb["vip_port_id"] and fip["fixed_ip_address"] == lb["vip_address"]
    assert fip["status"] == "DOWN" and fip["virtual_ip_id"]
    assert _jobs(api) == [_add(lb, address)]
    with api.db.session(writer=False) as s:
        vip = s.get(models.VirtualIp, fip["virtual_ip_id"])
        assert vip is not None and vip.load_balancer_id == lb["id"]
        assert (vip.vip_address, vip.vip_port_id) == (lb["vip_address"], lb["vip_port_id"])
        amphorae = set(s.scalars(select(models.Amphora.id)))
        assert amphorae and fip["virtual_ip_id"] not in amphorae  # never bound to an amphora

    listed = api.get(PATH, TENANT_A, params={"port_id": lb["vip_port_id"]}).json()
    assert [f["id"] for f in listed["floatingips"]] == [fip["id"]]
    by_fixed = api.get(PATH, TENANT_A, params={"fixed_ip_address": lb["vip_address"]}).json()
    assert [f["id"] for f in by_fixed["floatingips"]] == [fip["id"]]


def test_dissociation_reassociation_and_delete_queue_remove_and_add_jobs(api: Api) -> None:
    lb1, lb2 = api.create_lb(TENANT_A, name="one"), api.create_lb(TENANT_A, name="two")
    fip = _made(api)
    address, path = fip["floating_ip_address"], f"{PATH}/{fip['id']}"

    bound = _put(api, fip["id"], port_id=lb1["vip_port_id"])
    assert bound.status_code == 200, bound.text
    assert bound.json()["floatingip"]["fixed_ip_address"] == lb1["vip_address"]
    expected = [_add(lb1, address)]
    assert _jobs(api) == sorted(expected, key=repr)
    before = _rows(api)
    again = _put(api, fip["id"], port_id=lb1["vip_port_id"], fixed_ip_address=lb1["vip_address"])
    assert again.status_code == 200, again.text
    assert (
        _jobs(api) == sorted(expected, key=repr) and _rows(api) == before
    )  # no change: no job, row untouched

    moved = _put(api, fip["id"], port_id=lb2["vip_port_id"]).json()["floatingip"]
    assert moved["port_id"] == lb2["vip_port_id"] and moved["status"] == "DOWN"
    expected += [_remove(lb1, address), _add(lb2, address)]
    assert _jobs(api) == sorted(expected, key=repr)

    unbound = _put(api, fip["id"], port_id=None).json()["floatingip"]
    assert unbound["port_id"] is unbound["fixed_ip_address"] is unbound["virtual_ip_id"] is None
    expected.append(_remove(lb2, address))
    assert _jobs(api) == sorted(expected, key=repr)
    assert _put(api, fip["id"], port_id=None).status_code == 200
    assert _jobs(api) == sorted(expected, key=repr)  # already unbound

    assert _put(api, fip["id"], port_id=lb1["vip_port_id"]).status_code == 200
    assert api.delete(path, TENANT_A).status_code == 204
    expected += [_add(lb1, address), _remove(lb1, address)]
    assert _jobs(api) == sorted(expected, key=repr)
    assert api.get(path, TENANT_A).status_code == 404


def test_tenants_see_and_bind_only_their_own(api: Api) -> None:
    lb_a = api.create_lb(TENANT_A)
    lb_b = api.create_lb(TENANT_B)
    fip_a = _made(api, TENANT_A, port_id=lb_a["vip_port_id"])
    fip_b = _made(api, TENANT_B)
    path_a = f"{PATH}/{fip_a['id']}"

    assert api.get(path_a, TENANT_B).status_code == 404
    assert [f["id"] for f in api.get(PATH, TENANT_B).json()["floatingips"]] == [fip_b["id"]]
    assert _put(api, fip_a["id"], TENANT_B, port_id=None).status_code == 404
    assert api.delete(path_a, TENANT_B).status_code == 404
    refused = _put(api, fip_b["id"], TENANT_B, port_id=lb_a["vip_port_id"])
    assert refused.status_code == 404 and refused.json()["field"] == "port_id", refused.text
    refused = _create(api, TENANT_B, port_id=lb_a["vip_port_id"])
    assert refused.status_code == 404 and refused.json()["field"] == "port_id", refused.text
    assert api.get(f"/v2/ports/{lb_a['vip_port_id']}", TENANT_B).status_code == 404

    everything = {f["id"] for f in api.get(PATH, ADMIN).json()["floatingips"]}
    assert everything == {fip_a["id"], fip_b["id"]}
    assert api.get(path_a, ADMIN).status_code == 200
    mine = {f["id"] for f in api.get(PATH, ADMIN, params={"project_id": "project-b"}).json()[
        "floatingips"]}  # fmt: skip
    assert mine == {fip_b["id"]}
    # An admin may bind any project's floating IP to any load balancer, and create in any.
    assert _put(api, fip_b["id"], ADMIN, port_id=lb_b["vip_port_id"]).status_code == 200
    other = _made(api, ADMIN, project_id="project-b")
    assert other["project_id"] == "project-b"
    refused = _create(api, TENANT_A, project_id="project-b")
    assert refused.status_code == 403 and "project_id" in refused.json()["faultstring"]


def test_refusals_name_the_field_and_change_nothing(api: Api) -> None:
    lb4 = api.create_lb(TENANT_A)
    lb6 = api.create_lb(TENANT_A, vip_subnet_id=ANYCAST_V6.id)
    lb_b = api.create_lb(TENANT_B)
    gone = api.create_lb(TENANT_A, name="gone")
    bound = _made(api, port_id=lb4["vip_port_id"])
    free = _made(api)
    assert api.delete(f"/v2/lbaas/loadbalancers/{gone['id']}", TENANT_A).status_code == 204
    with api.db.session(writer=False) as s:
        row = s.get(models.FloatingIp, free["id"])
        assert row is not None
        reservation = row.floating_port_id
    anycast_net = ANYCAST_V4.network_id
    ext = {"floating_network_id": EXT_NET}
    cases: list[tuple[str, str, dict[str, Any], int, str | None]] = [
        ("POST", "", {}, 400, "floating_network_id"),
        ("POST", "", {**ext, "router_id": "r"}, 400, "router_id"),
        ("POST", "", {"floating_network_id": "nope"}, 404, "floating_network_id"),
        ("POST", "", {"floating_network_id": anycast_net}, 400, "floating_network_id"),
        ("POST", "", {**ext, "floating_ip_address": "not-an-ip"}, 400, "floating_ip_address"),
        ("POST", "", {**ext, "floating_ip_address": "198.18.3.50"}, 400, "floating_ip_address"),
        ("POST", "", {**ext, "floating_ip_address": "198.18.100.50"}, 400,
         "floating_ip_address"),
        ("POST", "", {**ext, "floating_ip_address": "fd00:198:19:100::50"}, 400,
         "floating_ip_address"),
        ("POST", "", {**ext, "floating_ip_address": "198.19.100.0"}, 400, "floating_ip_address"),
        ("POST", "", {**ext, "floating_ip_address": bound["floating_ip_address"]}, 409,
         "floating_ip_address"),
        ("POST", "", {**ext, "subnet_id": EXT_V6}, 400, "subnet_id"),
        ("POST", "", {**ext, "subnet_id": ANYCAST_V4.id}, 400, "subnet_id"),
        ("POST", "", {**ext, "subnet_id": "nope"}, 404, "subnet_id"),
        ("POST", "", {**ext, "description": "x" * 256}, 400, "description"),
        ("POST", "", {**ext, "port_id": "nope"}, 404, "port_id"),
        ("POST", "", {**ext, "port_id": lb_b["vip_port_id"]}, 404, "port_id"),
        ("POST", "", {**ext, "port_id": reservation}, 404, "port_id"),  # not the tenant's
        ("POST", "", {**ext, "fixed_ip_address": lb4["vip_address"]}, 400, "fixed_ip_address"),
        ("POST", "", {**ext, "port_id": lb4["vip_port_id"]}, 409, "port_id"),  # has one
        ("POST", "", {**ext, "port_id": lb4["vip_port_id"], "fixed_ip_address": "198.18.100.9"},
         400, "fixed_ip_address"),
        ("POST", "", {**ext, "port_id": lb6["vip_port_id"]}, 400, "port_id"),
        ("POST", "", {**ext, "port_id": lb6["vip_port_id"],
                      "fixed_ip_address": lb6["vip_address"]}, 400, "fixed_ip_address"),
        ("POST", "", {**ext, "port_id": gone["vip_port_id"]}, 409, "port_id"),
        ("PUT", free["id"], {"port_id": "nope"}, 404, "port_id"),
        ("PUT", free["id"], {"port_id": lb4["vip_port_id"]}, 409, "port_id"),
        ("PUT", free["id"], {"fixed_ip_address": "198.18.100.9"}, 400, "fixed_ip_address"),
        ("PUT", free["id"], {"floating_ip_address": "198.19.100.9"}, 400, "floating_ip_address"),
        ("PUT", free["id"], {"port_id": 5}, 400, "port_id"),
        ("PUT", bound["id"], {"port_id": lb6["vip_port_id"]}, 400, "port_id"),
        ("PUT", "nope", {"port_id": None}, 404, None),
    ]  # fmt: skip
    for method, fip_id, fields, status, field in cases:
        before, rows = _counts(api), _rows(api)
        if method == "POST":
            response = api.post(PATH, {"floatingip": fields}, TENANT_A)
        else:
            response = _put(api, fip_id, **fields)
        case = f"{method} {fields}: {response.status_code} {response.text}"
        assert response.status_code == status, case
        assert response.json()["field"] == field, case
        assert _counts(api) == before and _rows(api) == rows, case
    # An admin sees the reservation port: it is no VIP port.
    refused = _create(api, ADMIN, port_id=reservation)
    assert refused.status_code == 400 and refused.json()["field"] == "port_id", refused.text
    assert "is not a load balancer VIP port" in refused.json()["faultstring"]
    refused = _create(api, port_id=lb6["vip_port_id"]).json()["faultstring"]
    assert refused == (
        f"Bad floatingip request: Port {lb6['vip_port_id']} does not have any IPv4 address"
    )


def test_the_ports_view(api: Api) -> None:
    lb = api.create_lb(TENANT_A)
    other = api.create_lb(TENANT_B)
    fip = _made(api)

    ports = api.get("/v2.0/ports", ADMIN).json()["ports"]
    owners = {p["device_owner"] for p in ports}
    assert {"Octavia", "Octavia:frontend", "network:floatingip"} <= owners, owners
    vip = next(p for p in ports if p["id"] == lb["vip_port_id"])
    assert vip["device_id"] == f"lb-{lb['id']}" and vip["network_id"] == ANYCAST_V4.network_id
    assert vip["fixed_ips"] == [{"subnet_id": ANYCAST_V4.id, "ip_address": lb["vip_address"]}]
    assert vip["project_id"] == vip["tenant_id"] == "project-a"
    assert vip["security_groups"] == [] and vip["binding:vnic_type"] == "normal"
    assert vip["mac_address"] and vip["status"] and vip["admin_state_up"] is True
    assert vip["created_at"] and "updated_at" in vip and "name" in vip

    mine = api.get("/v2/ports", TENANT_A).json()["ports"]
    assert [p["id"] for p in mine] == [lb["vip_port_id"]]
    assert api.get(f"/v2/ports/{lb['vip_port_id']}", TENANT_A).json()["port"] == vip
    assert api.get(f"/v2/ports/{other['vip_port_id']}", TENANT_A).status_code == 404
    reservation = next(p for p in ports if p["device_id"] == f"floatingip-{fip['id']}")
    assert api.get(f"/v2/ports/{reservation['id']}", TENANT_A).status_code == 404
    assert api.get(f"/v2/ports/{reservation['id']}", ADMIN).status_code == 200

    for key, value in [("device_owner", "Octavia"), ("project_id", "project-b"),
                       ("tenant_id", "project-b"), ("device_id", f"lb-{other['id']}"),
                       ("id", other["vip_port_id"]), ("network_id", ANYCAST_V4.network_id),
                       ("mac_address", vip["mac_address"])]:  # fmt: skip
        found = {p["id"] for p in api.get("/v2/ports", ADMIN, params={key: value}).json()["ports"]}
        assert other["vip_port_id"] in found or lb["vip_port_id"] in found, (key, found)
    only_b = api.get("/v2/ports", ADMIN, params={"project_id": "project-b"}).json()["ports"]
    assert [p["id"] for p in only_b] == [other["vip_port_id"]]
    refused = api.get("/v2/ports", ADMIN, params={"color": "blue"})
    assert refused.status_code == 400 and refused.json()["field"] == "color"
    # Ports are the driver's, except VIP reservations (test_vip_ports): nothing else is made.
    made = api.post("/v2/ports", {"port": {"network_id": EXT_NET, "fixed_ips": [],
                                           "device_owner": "network:floatingip",
                                           "device_id": "x"}})  # fmt: skip
    assert made.status_code == 400, made.text


def test_the_virtual_ips_view(api: Api) -> None:
    lb = api.create_lb(TENANT_A)
    lb_b = api.create_lb(TENANT_B)
    fip = _made(api, port_id=lb["vip_port_id"])
    _made(api, TENANT_B, port_id=lb_b["vip_port_id"])

    listed = api.get("/v2/octavia/virtual-ips", TENANT_A).json()["virtual_ips"]
    assert len(listed) == 1
    vip = listed[0]
    assert vip["id"] == fip["virtual_ip_id"] and vip["load_balancer_id"] == lb["id"]
    assert (vip["vip_address"], vip["vip_port_id"]) == (lb["vip_address"], lb["vip_port_id"])
    assert vip["floating_ips"] == [
        {"id": fip["id"], "floating_ip_address": fip["floating_ip_address"]}
    ]
    assert vip["interfaces"] == [] and vip["created_at"] and "updated_at" in vip
    path = f"/v2.0/octavia/virtual-ips/{vip['id']}"
    assert api.get(path, TENANT_A).json()["virtual_ip"] == vip
    assert api.get(path, TENANT_B).status_code == 404
    assert api.get(path, ADMIN).status_code == 200
    assert len(api.get("/v2/octavia/virtual-ips", ADMIN).json()["virtual_ips"]) == 2
    by_lb = api.get("/v2/octavia/virtual-ips", ADMIN, params={"load_balancer_id": lb_b["id"]})
    assert [v["load_balancer_id"] for v in by_lb.json()["virtual_ips"]] == [lb_b["id"]]
    assert api.get("/v2/octavia/virtual-ips/nope", ADMIN).status_code == 404


def test_openstack_floating_ip_cli(server: Server) -> None:
    lb = server.openstack(
        "loadbalancer", "create", "--name", "web", "--vip-subnet-id", "anycast-net-v4"
    )
    other = server.openstack(
        "loadbalancer", "create", "--name", "api", "--vip-subnet-id", "anycast-net-v4"
    )
    server.settle()  # before any association: the floating IP flow is not run here
    fip = server.openstack("floating", "ip", "create", "ext-net", "--port", lb["vip_port_id"])
    assert fip["port_id"] == lb["vip_port_id"] and fip["fixed_ip_address"] == lb["vip_address"]
    assert ipaddress.ip_address(fip["floating_ip_address"]) in POOL
    listed = server.openstack("floating", "ip", "list")
    assert [(f["ID"], f["Port"]) for f in listed] == [(fip["id"], lb["vip_port_id"])]
    shown = server.openstack("floating", "ip", "show", fip["floating_ip_address"])
    assert shown["id"] == fip["id"] and shown["virtual_ip_id"] == fip["virtual_ip_id"]

    server.openstack("floating", "ip", "set", "--port", other["vip_port_id"], fip["id"],
                     output=False)  # fmt: skip
    assert server.openstack("floating", "ip", "show", fip["id"])["port_id"] == other["vip_port_id"]
    server.openstack("floating", "ip", "unset", "--port", fip["id"], output=False)
    assert server.openstack("floating", "ip", "show", fip["id"])["port_id"] is None
    server.openstack("floating", "ip", "delete", fip["id"], output=False)
    assert server.openstack("floating", "ip", "list") == []
    with server.db.session(writer=False) as s:
        jobs = sorted(
            (
                (j.target_id, j.arguments)
                for j in s.scalars(select(models.WorkerJob).where(models.WorkerJob.flow == FLOW))
            ),
            key=repr,
        )
    address = fip["floating_ip_address"]
    assert jobs == sorted(
        [
            (lb["id"], {"add": [address], "remove": []}),
            (lb["id"], {"add": [], "remove": [address]}),
            (other["id"], {"add": [address], "remove": []}),
            (other["id"], {"add": [], "remove": [address]}),
        ],
        key=repr,
    )
