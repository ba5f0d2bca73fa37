"""The floating IP job run by the real worker (L3_BGP distributor driver; noop compute and
amphora drivers keep what each agent was told): a floating IP bound to a load balancer's VIP
port is registered on every registered amphora with its own front-end next hop, plugged on
its loopback and bound by HAProxy, and is ACTIVE; unbound, it is withdrawn everywhere (the
VIP stays) and DOWN; the virtual-ip's interfaces are the registered amphorae; deleting the
load balancer dissociates it. In dedicated mode the distributor amphorae announce it."""

from __future__ import annotations

from typing import Any

from l3dist.controller.worker import Worker
from l3dist.network.catalog import stable_id

from .conftest import ADMIN, TENANT_A, Api

EXT_NET = stable_id("ext-net")
PATH = "/v2/floatingips"


def serving_lb(api: Api, distributor_id: str, count: int = 2) -> dict[str, Any]:
    lb = api.create_lb(topology="ACTIVE_ACTIVE", amphora_count=count, distributor_id=distributor_id)
    api.create("/v2/lbaas/listeners", "listener", loadbalancer_id=lb["id"], protocol="HTTP",
               protocol_port=80)  # fmt: skip
    return lb


def amphorae(api: Api, lb: dict[str, Any]) -> list[dict[str, Any]]:
    rows = api.get(f"/v2/octavia/amphorae?loadbalancer_id={lb['id']}").json()["amphorae"]
    return [a for a in rows if a["status"] == "ALLOCATED"]


def agent(worker: Worker, amphora: dict[str, Any]) -> Any:
    agents = worker.services.amphora.agents  # type: ignore[attr-defined]
    return agents.get(amphora["compute_id"] or amphora["id"])


def announced(worker: Worker, amphora: dict[str, Any]) -> set[tuple[str, str]]:
    """(address, next hop) of every registration the amphora's agent holds."""
    return {(k[1], k[2]) for k in agent(worker, amphora).registrations}


def fip_of(api: Api, fip_id: str) -> dict[str, Any]:
    return dict(api.get(f"{PATH}/{fip_id}", TENANT_A).json()["floatingip"])


def test_bind_announces_on_every_amphora_and_unbind_withdraws_it_only(
    api: Api, worker: Worker
) -> None:
    distributor = api.active_distributor(worker)
    lb = serving_lb(api, distributor["id"])
    amps = amphorae(api, lb)
    vip = lb["vip_address"]
    made = api.post(PATH, {"floatingip": {"floating_network_id": EXT_NET,
                                          "port_id": lb["vip_port_id"]}}, TENANT_A)  # fmt: skip
    assert made.status_code == 201, made.text
    fip = made.json()["floatingip"]
    address = fip["floating_ip_address"]
    assert fip["status"] == "DOWN"
    api.settle()
    assert fip_of(api, fip["id"])["status"] == "ACTIVE"
    for amp in amps:
        told = agent(worker, amp)
        assert announced(worker, amp) == {(vip, amp["frontend_ip"]), (address, amp["frontend_ip"])}
        assert {vip, address} <= told.vips
        (config,) = told.haproxy.values()
        assert f"bind {vip}:80" in config and f"bind {address}:80" in config
    (shown,) = api.get(f"/v2/octavia/virtual-ips?load_balancer_id={lb['id']}").json()["virtual_ips"]
    assert [f["floating_ip_address"] for f in shown["floating_ips"]] == [address]
    assert {(i["amphora_id"], i["ip_address"]) for i in shown["interfaces"]} == {
        (a["id"], a["frontend_ip"]) for a in amps
    }

    # A scale-out registers the new amphora for both addresses; its interface joins; the
    # floating IP's row is not written.
    before = fip_of(api, fip["id"])
    api.put(f"/v2/lbaas/loadbalancers/{lb['id']}", {"loadbalancer": {"amphora_count": 3}},
            TENANT_A)  # fmt: skip
    api.settle()
    grown = amphorae(api, lb)
    (new,) = [a for a in grown if a["id"] not in {x["id"] for x in amps}]
    assert announced(worker, new) == {(vip, new["frontend_ip"]), (address, new["frontend_ip"])}
    (shown,) = api.get(f"/v2/octavia/virtual-ips?load_balancer_id={lb['id']}").json()["virtual_ips"]
    assert {i["amphora_id"] for i in shown["interfaces"]} == {a["id"] for a in grown}
    assert fip_of(api, fip["id"]) == before

    # Unbound: withdrawn and off every loopback, HAProxy lets go; the VIP stays.
    assert (
        api.put(f"{PATH}/{fip['id']}", {"floatingip": {"port_id": None}}, TENANT_A).status_code
        == 200
    )
    api.settle()
    assert fip_of(api, fip["id"])["status"] == "DOWN"
    for amp in grown:
        told = agent(worker, amp)
        assert announced(worker, amp) == {(vip, amp["frontend_ip"])}
        assert address not in told.vips and vip in told.vips
        (config,) = told.haproxy.values()
        assert f"bind {address}:80" not in config and f"bind {vip}:80" in config

    # Bound again, then the load balancer deleted: the floating IP is dissociated, DOWN.
    api.put(f"{PATH}/{fip['id']}", {"floatingip": {"port_id": lb["vip_port_id"]}}, TENANT_A)
    api.settle()
    assert fip_of(api, fip["id"])["status"] == "ACTIVE"
    assert (
        api.delete(f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true", TENANT_A).status_code == 204
    )
    api.settle()
    after = fip_of(api, fip["id"])
    assert (after["port_id"], after["fixed_ip_address"], after["status"]) == (None, None, "DOWN")
    assert api.get("/v2/octavia/virtual-ips", ADMIN).json()["virtual_ips"] == []


def test_a_dedicated_distributor_announces_the_floating_ip_for_each_amphora(
    api: Api, worker: Worker
) -> None:
    v4 = api.create("/v2/lbaas/bgpspeakers", "bgp_speaker", ADMIN, name="d-v4", ip_version=4,
                    local_as=65001)  # fmt: skip
    peer = api.create("/v2/lbaas/bgppeers", "bgp_peer", ADMIN, name="d-tor",
                      peer_ip="198.18.0.1", remote_as=65000)  # fmt: skip
    api.put(f"/v2/lbaas/bgpspeakers/{v4['id']}/add_bgp_peer", {"bgp_peer_id": peer["id"]})
    made = api.create("/v2/lbaas/distributors", "distributor", ADMIN, name="dedicated",
                      distributor_type="L3_BGP", config_data={"bgp_speaker_ids": [v4["id"]],
                      "mode": "dedicated", "distributor_amphorae": 2})  # fmt: skip
    lb = serving_lb(api, made["id"])
    amps = amphorae(api, lb)
    speakers = api.get(f"/v2/octavia/amphorae?distributor_id={made['id']}").json()["amphorae"]
    assert len(speakers) == 2
    made_fip = api.post(PATH, {"floatingip": {"floating_network_id": EXT_NET,
                                              "port_id": lb["vip_port_id"]}}, TENANT_A)  # fmt: skip
    fip = made_fip.json()["floatingip"]
    api.settle()
    assert fip_of(api, fip["id"])["status"] == "ACTIVE"
    address = fip["floating_ip_address"]
    paths = {(address, a["frontend_ip"]) for a in amps}
    for speaker in speakers:
        assert paths <= announced(worker, speaker)
    for amp in amps:
        assert announced(worker, amp) == set()  # load-balancing amphorae run no BGP
        assert address in agent(worker, amp).vips
    api.put(f"{PATH}/{fip['id']}", {"floatingip": {"port_id": None}}, TENANT_A)
    api.settle()
    for speaker in speakers:
        assert not paths & announced(worker, speaker)
        assert {(lb["vip_address"], a["frontend_ip"]) for a in amps} <= announced(worker, speaker)
    assert all(address not in agent(worker, a).vips for a in amps)
