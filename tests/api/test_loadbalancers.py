"""Load balancers through the REST API, with Octavia's conventions, on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from sqlalchemy import select

from l3dist.controller.worker import Worker
from l3dist.db import models

from .conftest import ADMIN, ANYCAST_V4, ANYCAST_V6, FRONTEND_V4, TENANT_A, TENANT_B, Api, run_jobs


def test_version_document_and_openapi(api: Api) -> None:
    versions = api.get("/").json()["versions"]
    assert versions[0]["status"] == "CURRENT" and versions[0]["id"].startswith("v2")
    assert "/v2/lbaas/loadbalancers" in api.get("/openapi.json").json()["paths"]


def test_create_records_desired_state_and_returns_at_once(api: Api) -> None:
    response = api.post(
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {"name": "web", "vip_subnet_id": ANYCAST_V4.id}},
        TENANT_A,
    )
    assert response.status_code == 201
    lb = response.json()["loadbalancer"]
    assert lb["provisioning_status"] == "PENDING_CREATE"
    assert lb["operating_status"] == "OFFLINE"
    assert lb["project_id"] == "project-a"
    assert lb["topology"] == "SINGLE" and lb["amphora_count"] == 1
    assert lb["vip_address"] in {
        str(ip) for ip in __import__("ipaddress").ip_network(ANYCAST_V4.cidr)
    }
    # The VIP subnet is an anycast pool, never a front end: the front end defaults to the
    # operator's front-end subnet of the VIP's family.
    assert lb["frontend_subnet_id"] == FRONTEND_V4.id
    with api.db.session() as s:
        row = s.get(models.LoadBalancer, lb["id"])
        assert row is not None and row.vip is not None
        assert row.vip.ip_address == lb["vip_address"]
        # Reserved by the network driver's IPAM (the one place addresses are handed out).
        allocation = s.get(models.NetIpAllocation, (ANYCAST_V4.id, lb["vip_address"]))
        assert allocation is not None and allocation.port_id == row.vip.port_id


def test_vip_and_frontend_subnets_are_separate(api: Api) -> None:
    lb = api.create_lb(vip_address="198.18.100.77", frontend_subnet_id=FRONTEND_V4.id)
    assert lb["vip_address"] == "198.18.100.77"
    assert lb["vip_subnet_id"] == ANYCAST_V4.id
    assert lb["frontend_subnet_id"] == FRONTEND_V4.id
    assert lb["frontend_network_id"] == FRONTEND_V4.network_id


def test_vip_network_id_picks_the_subnet_of_the_address_family(api: Api) -> None:
    lb = api.create_lb(
        vip_subnet_id=None, vip_network_id=ANYCAST_V6.network_id, vip_address="fd00:198:18:100::77"
    )
    assert lb["vip_subnet_id"] == ANYCAST_V6.id


def test_addresses_are_never_handed_out_twice(api: Api) -> None:
    addresses = {api.create_lb()["vip_address"] for _ in range(5)}
    assert len(addresses) == 5


def test_active_active_with_a_distributor(api: Api, worker: Worker) -> None:
    distributor = api.active_distributor(worker)
    lb = api.create_lb(topology="ACTIVE_ACTIVE", amphora_count=3)
    assert lb["distributor_id"] == distributor["id"]  # the only distributor is the default
    assert lb["amphora_count"] == 3
    updated = api.put(
        f"/v2/lbaas/loadbalancers/{lb['id']}", {"loadbalancer": {"amphora_count": 4}}, TENANT_A
    ).json()["loadbalancer"]
    assert updated["amphora_count"] == 4
    assert updated["provisioning_status"] == "PENDING_UPDATE"


def test_a_distributor_the_worker_has_not_made_active_is_409(api: Api, worker: Worker) -> None:
    """An amphora gets the distributor's speakers and peers: not before the worker checked
    them (PENDING_CREATE), nor after they failed (ERROR). Nothing is made."""
    unchecked = api.create("/v2/lbaas/distributors", "distributor", ADMIN, settle=False,
                           name="unchecked", distributor_type="L3_BGP")  # fmt: skip
    body = {"vip_subnet_id": ANYCAST_V4.id, "topology": "ACTIVE_ACTIVE", "amphora_count": 2,
            "distributor_id": unchecked["id"]}  # fmt: skip
    for status in ("PENDING_CREATE", "ERROR"):
        before = api.snapshot()
        refused = api.post("/v2/lbaas/loadbalancers", {"loadbalancer": body}, TENANT_A)
        assert (refused.status_code, refused.json()["field"]) == (409, "distributor_id")
        assert f"is {status}, not ACTIVE" in refused.json()["faultstring"]
        assert api.snapshot() == before
        run_jobs(worker)  # the check: a distributor without speakers is ERROR
    shown = api.get(f"/v2/lbaas/distributors/{unchecked['id']}").json()["distributor"]
    assert shown["status"] == "ERROR"


def test_update_while_pending_is_409_and_changes_nothing(api: Api) -> None:
    lb = api.post(
        "/v2/lbaas/loadbalancers",
        {"loadbalancer": {"name": "a", "vip_subnet_id": ANYCAST_V4.id}},
        TENANT_A,
    ).json()["loadbalancer"]
    response = api.put(
        f"/v2/lbaas/loadbalancers/{lb['id']}", {"loadbalancer": {"name": "b"}}, TENANT_A
    )
    assert response.status_code == 409
    assert "immutable" in response.json()["faultstring"]
    assert api.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]["name"] == "a"


def test_delete_needs_cascade_when_it_has_children(api: Api) -> None:
    lb = api.create_lb()
    api.create(
        "/v2/lbaas/listeners",
        "listener",
        loadbalancer_id=lb["id"],
        protocol="HTTP",
        protocol_port=80,
    )
    refused = api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}", TENANT_A)
    assert refused.status_code == 400 and refused.json()["field"] == "cascade"
    assert (
        api.delete(
            f"/v2/lbaas/loadbalancers/{lb['id']}", TENANT_A, params={"cascade": "true"}
        ).status_code
        == 204
    )
    shown = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert shown["provisioning_status"] == "PENDING_DELETE"


def test_status_tree(api: Api) -> None:
    lb = api.create_lb()
    listener = api.create(
        "/v2/lbaas/listeners",
        "listener",
        loadbalancer_id=lb["id"],
        protocol="HTTP",
        protocol_port=80,
    )
    pool = api.create(
        "/v2/lbaas/pools",
        "pool",
        listener_id=listener["id"],
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
    )
    member = api.create(
        f"/v2/lbaas/pools/{pool['id']}/members", "member", address="198.18.3.10", protocol_port=8080
    )
    api.create(
        "/v2/lbaas/healthmonitors",
        "healthmonitor",
        pool_id=pool["id"],
        type="HTTP",
        delay=5,
        timeout=3,
        max_retries=3,
    )
    tree = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}/status", TENANT_A).json()
    root = tree["statuses"]["loadbalancer"]
    assert (root["provisioning_status"], root["status_reason"]) == ("ACTIVE", None)
    pool_entry = root["listeners"][0]["pools"][0]
    assert pool_entry["id"] == pool["id"]
    assert pool_entry["members"][0]["id"] == member["id"]
    assert pool_entry["health_monitor"]["type"] == "HTTP"


def test_failover_is_admin_only_and_accepted(api: Api) -> None:
    lb = api.create_lb()
    assert api.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover", {}, TENANT_A).status_code == 403
    assert api.put(f"/v2/lbaas/loadbalancers/{lb['id']}/failover", {}).status_code == 202
    assert (
        api.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]["provisioning_status"]
        == "PENDING_UPDATE"
    )


def _page(api: Api, url: str) -> tuple[list[str], dict[str, str]]:
    body = api.get(url).json()
    links = {link["rel"]: link["href"] for link in body["loadbalancers_links"]}
    return [lb["name"] for lb in body["loadbalancers"]], links


def test_pagination_sort_fields_and_filters(api: Api) -> None:
    for i in range(7):
        api.create_lb(name=f"lb-{i}", description="even" if i % 2 == 0 else "odd")
    names, links = _page(api, "/v2/lbaas/loadbalancers?limit=3&sort=name:asc")
    assert names == ["lb-0", "lb-1", "lb-2"] and set(links) == {"next"}
    names, links = _page(api, links["next"])
    assert names == ["lb-3", "lb-4", "lb-5"] and set(links) == {"next", "previous"}
    last, _ = _page(api, links["next"])
    assert last == ["lb-6"]
    back, _ = _page(api, links["previous"])
    assert back == ["lb-0", "lb-1", "lb-2"]
    query = parse_qs(urlparse(links["next"]).query)
    assert query["limit"] == ["3"] and query["sort"] == ["name:asc"]

    desc, _ = _page(api, "/v2/lbaas/loadbalancers?sort=name:desc&limit=2")
    assert desc == ["lb-6", "lb-5"]
    odd = api.get("/v2/lbaas/loadbalancers?description=odd&fields=name&fields=id").json()
    assert sorted(x["name"] for x in odd["loadbalancers"]) == ["lb-1", "lb-3", "lb-5"]
    assert set(odd["loadbalancers"][0]) == {"name", "id"}
    two = api.get("/v2/lbaas/loadbalancers?name=lb-1&name=lb-2").json()["loadbalancers"]
    assert sorted(x["name"] for x in two) == ["lb-1", "lb-2"]


def test_tenants_see_only_their_own(api: Api) -> None:
    mine = api.create_lb(name="mine")
    theirs = api.create_lb(headers=TENANT_B, name="theirs")
    listed = api.get("/v2/lbaas/loadbalancers", TENANT_A).json()["loadbalancers"]
    assert [lb["id"] for lb in listed] == [mine["id"]]
    assert api.get(f"/v2/lbaas/loadbalancers/{theirs['id']}", TENANT_A).status_code == 404
    assert (
        api.put(
            f"/v2/lbaas/loadbalancers/{theirs['id']}", {"loadbalancer": {"name": "x"}}, TENANT_A
        ).status_code
        == 404
    )
    assert api.delete(f"/v2/lbaas/loadbalancers/{theirs['id']}", TENANT_A).status_code == 404
    assert len(api.get("/v2/lbaas/loadbalancers").json()["loadbalancers"]) == 2  # admin
    with api.db.session() as s:
        assert (
            s.scalar(select(models.LoadBalancer.name).where(models.LoadBalancer.id == theirs["id"]))
            == "theirs"
        )


def test_drain_amphora_shrinks_by_that_amphora(api: Api, worker: Worker) -> None:
    """The drain action queues a scale-in that removes exactly that amphora (drained first);
    refusals name the field and change nothing."""
    api.active_distributor(worker)
    lb = api.create_lb(topology="ACTIVE_ACTIVE", amphora_count=2)
    single = api.create_lb()
    with api.db.session() as s:
        for amp_id, lb_id in (("amp-a", lb["id"]), ("amp-b", lb["id"]), ("amp-s", single["id"])):
            s.add(models.Amphora(id=amp_id, status="ALLOCATED", load_balancer_id=lb_id))
        s.add(models.Amphora(id="amp-free", status="READY"))
        s.add(models.AmphoraRegistration(amphora_id="amp-a", load_balancer_id=lb["id"]))
    shown = api.get("/v2/octavia/amphorae/amp-a").json()["amphora"]
    assert shown["operating_status"] == "ONLINE"
    assert api.get("/v2/octavia/amphorae/amp-b").json()["amphora"]["operating_status"] == "OFFLINE"

    before = api.snapshot()
    assert api.put("/v2/octavia/amphorae/amp-a/drain", {}, TENANT_A).status_code == 403
    for amp_id, words in (("amp-s", "only amphora"), ("amp-free", "serves no load balancer")):
        refused = api.put(f"/v2/octavia/amphorae/{amp_id}/drain", {})
        assert refused.status_code == 400, refused.text
        assert words in refused.json()["faultstring"] and "amphora_id" in refused.text
    assert api.put("/v2/octavia/amphorae/nope/drain", {}).status_code == 404
    assert api.snapshot() == before

    assert api.put("/v2/octavia/amphorae/amp-b/drain", {}).status_code == 202
    shown_lb = api.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]
    assert (shown_lb["amphora_count"], shown_lb["provisioning_status"]) == (1, "PENDING_UPDATE")
    with api.db.session() as s:
        job = s.scalars(
            select(models.WorkerJob).order_by(models.WorkerJob.created_at.desc())
        ).first()
        assert job is not None
        assert (job.flow, job.arguments) == (
            "scale_load_balancer",
            {"amphora_count": 1, "remove": ["amp-b"]},
        )
    # one change at a time: the load balancer is busy until the worker is done
    assert api.put("/v2/octavia/amphorae/amp-a/failover", {}).status_code == 409
