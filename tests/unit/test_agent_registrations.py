"""Register / Unregister / List Amphora and VIP on the agent, without a daemon: which routes
the speaker is handed when a route is withdrawn from one peer or from all (the spec's
``peer_id``), and that List tells what the speaker sends, not what was asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from l3dist.amphora_agent.api import create_app
from l3dist.amphora_agent.service import AgentError, AgentService
from l3dist.bgp.base import Route
from l3dist.contracts.agent_config import AgentConfig

from .test_route_safety import agent_config as route_safety_config

VIP, NEXTHOP, OTHER_AMPHORA = "198.18.100.10", "198.18.1.101", "amp-2"
VIP6, NEXTHOP6 = "fd00:198:18:100::a", "fd00:198:18:1::65"
PREFIX = f"{VIP}/32"


class RecordingSpeaker:
    """Stands in for the BGP daemon: keeps the last route set it was handed."""

    name = "recording"
    routes: frozenset[Route] = frozenset()

    def __init__(self, fail_start: bool = False) -> None:
        self.fail_start = fail_start
        self.running = False

    def apply(self, routes: frozenset[Route]) -> None:
        self.routes = routes

    def start(self, routes: frozenset[Route]) -> None:
        if self.fail_start:
            raise RuntimeError("the daemon would not start")
        self.routes, self.running = routes, True

    def stop(self) -> None:
        self.running = False

    def processes(self) -> list[Any]:
        return []

    def restarted(self) -> None:
        pass


def config(tmp_path: Path) -> dict[str, Any]:
    """The route-safety tests' amphora with two IPv4 peers (two routers) and one IPv6 peer."""
    base = route_safety_config(tmp_path, ["198.18.100.0/24", "fd00:198:18:100::/64"])
    peers4 = [{"id": "tor-a", "peer_ip": "198.18.0.1", "remote_as": 65000},
              {"id": "tor-b", "peer_ip": "198.18.0.2", "remote_as": 65000}]  # fmt: skip
    speakers = base["bgp"]["speakers"]
    speakers[0] = {**speakers[0], "peers": peers4}
    assert [s["ip_version"] for s in speakers] == [4, 6]
    return base


class Agent:
    def __init__(self, tmp_path: Path) -> None:
        self.service = AgentService(AgentConfig.model_validate(config(tmp_path)))
        self.speaker = RecordingSpeaker()
        self.service.speaker = self.speaker  # type: ignore[assignment]
        self.service.listener_check.state.healthy = True  # HAProxy serving, as checks would find
        self.http = TestClient(create_app(self.service, manage_lifecycle=False))

    def register(self, peer_id: str | None = None, amphora_id: str = OTHER_AMPHORA) -> Any:
        body = {"amphora_id": amphora_id, "vip_ip": VIP, "nexthop_ip": NEXTHOP}
        if peer_id:
            body["peer_id"] = peer_id
        return self.http.post("/1.0/distributor/amphorae", json=body)

    def unregister(self, peer_id: str | None = None) -> Any:
        params = {"vip_ip": VIP, "nexthop_ip": NEXTHOP, **({"peer_id": peer_id} if peer_id else {})}
        return self.http.delete(f"/1.0/distributor/amphorae/{OTHER_AMPHORA}", params=params)

    def peers(self) -> set[str]:
        """The peers the speaker announces the VIP to."""
        return {r.peer_id for r in self.speaker.routes if r.prefix == PREFIX}

    def listed(self) -> list[dict[str, Any]]:
        return list(self.http.get("/1.0/distributor/amphorae").json()["amphorae"])


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    made = Agent(tmp_path)
    yield made
    made.http.close()


def test_unregister_with_a_peer_withdraws_from_that_peer_only(agent: Agent) -> None:
    assert agent.register().status_code == 201
    assert agent.peers() == {"tor-a", "tor-b"}
    assert agent.unregister("tor-a").status_code == 204
    assert agent.peers() == {"tor-b"}
    [entry] = agent.listed()
    assert (entry["peer_id"], entry["announced_to"], entry["withdrawn"]) == (
        "tor-b",
        ["tor-b"],
        None,
    )
    again = agent.unregister("tor-a")
    assert (again.status_code, again.json()["field"]) == (404, "peer_id"), again.text
    assert agent.peers() == {"tor-b"}, "a refused call changes nothing"
    assert agent.unregister("tor-b").status_code == 204
    assert agent.peers() == set() and agent.listed() == []


def test_unregister_without_a_peer_withdraws_from_every_peer(agent: Agent) -> None:
    assert agent.register("tor-a").status_code == 201
    assert agent.register("tor-b").status_code == 201
    assert agent.peers() == {"tor-a", "tor-b"}
    assert agent.unregister().status_code == 204
    assert agent.peers() == set() and agent.listed() == []
    gone = agent.unregister()
    assert (gone.status_code, gone.json()["field"]) == (404, "amphora_id")


def test_registering_for_every_peer_takes_the_place_of_single_peers(agent: Agent) -> None:
    assert agent.register("tor-a").status_code == 201
    assert agent.register().status_code == 201
    assert [e["peer_id"] for e in agent.listed()] == [None]
    assert agent.peers() == {"tor-a", "tor-b"}
    covered = agent.register("tor-b")
    assert (covered.status_code, covered.json()["field"]) == (409, "amphora_id")


def test_an_unknown_peer_is_404_and_changes_nothing(agent: Agent) -> None:
    assert agent.register().status_code == 201
    answer = agent.unregister("tor-v6")  # an IPv6 peer: never announced an IPv4 VIP
    assert (answer.status_code, answer.json()["field"]) == (404, "peer_id")
    assert agent.peers() == {"tor-a", "tor-b"}


def test_a_drain_covers_every_peer_and_survives_a_withdrawal_from_one(agent: Agent) -> None:
    assert agent.register().status_code == 201
    drained = agent.http.post(f"/1.0/distributor/amphorae/{OTHER_AMPHORA}/drain",
                              json={"vip_ip": VIP, "nexthop_ip": NEXTHOP})  # fmt: skip
    assert drained.status_code == 202, drained.text
    assert agent.peers() == set()
    assert agent.unregister("tor-a").status_code == 204
    [entry] = agent.listed()
    assert (entry["peer_id"], entry["announced_to"]) == ("tor-b", [])
    assert (entry["draining"], entry["withdrawn"]) == (True, "draining")
    assert agent.peers() == set(), "still drained"


def test_list_tells_what_the_speaker_sends(agent: Agent) -> None:
    """Listeners down, or fenced: nothing announced, and List says so and why."""
    assert agent.register().status_code == 201
    assert agent.listed()[0]["announced_to"] == ["tor-a", "tor-b"]
    agent.service.listener_check.state.healthy = False  # what `fall` failed checks set
    agent.service._listeners_changed(False)
    [entry] = agent.listed()
    assert (entry["announced_to"], entry["withdrawn"]) == ([], "listeners_down")
    assert agent.peers() == set()
    agent.service.listener_check.state.healthy = True
    agent.service._listeners_changed(True)
    assert agent.listed()[0]["announced_to"] == ["tor-a", "tor-b"]
    agent.service.fenced = "a test fence"  # what fence() sets, without the front-end link
    agent.service._listeners_changed(True)  # any later re-apply of the routes
    [entry] = agent.listed()
    assert (entry["announced_to"], entry["withdrawn"]) == ([], "fenced")


def test_unregister_vip_with_a_peer_withdraws_from_that_peer_only(agent: Agent) -> None:
    body = {"vip_ip": VIP, "nexthop_ip": "198.18.1.50"}
    assert agent.http.post("/1.0/distributor/vips", json=body).status_code == 201
    gone = agent.http.delete(f"/1.0/distributor/vips/{VIP}",
                             params={"nexthop_ip": "198.18.1.50", "peer_id": "tor-b"})  # fmt: skip
    assert gone.status_code == 204, gone.text
    assert agent.peers() == {"tor-a"}
    [entry] = agent.http.get("/1.0/distributor/vips").json()["vips"]
    assert (entry["peer_id"], entry["announced_to"], entry["withdrawn"]) == (
        "tor-a",
        ["tor-a"],
        None,
    )


def test_a_drain_for_one_peer_leaves_the_route_to_the_others(agent: Agent) -> None:
    assert agent.register().status_code == 201
    path = f"/1.0/distributor/amphorae/{OTHER_AMPHORA}/drain"
    body = {"vip_ip": VIP, "nexthop_ip": NEXTHOP}
    drained = agent.http.post(path, json={**body, "peer_id": "tor-a"})
    assert drained.status_code == 202, drained.text
    assert agent.peers() == {"tor-b"}
    by_peer = {e["peer_id"]: e for e in agent.listed()}
    assert by_peer["tor-a"]["withdrawn"] == "draining"
    assert by_peer["tor-b"]["announced_to"] == ["tor-b"]
    unknown = agent.http.post(path, json={**body, "peer_id": "tor-v6"})
    assert (unknown.status_code, unknown.json()["field"]) == (404, "peer_id")


def new_speakers(agent: Agent, **changes: Any) -> Any:
    bgp = agent.service.config.bgp
    speakers = [s.model_copy(update={"peers": [p.model_copy(update=changes) for p in s.peers]})
                for s in bgp.speakers]  # fmt: skip
    return bgp.model_copy(update={"speakers": speakers})


def test_replacing_the_speakers_keeps_the_routes(agent: Agent) -> None:
    assert agent.register().status_code == 201
    started = RecordingSpeaker()
    agent.service._make_speaker = lambda bgp: started  # type: ignore[method-assign]
    assert agent.service.replace_speakers(new_speakers(agent, hold_time=9)) is True
    assert agent.service.speaker is started and started.running
    assert {r.peer_id for r in started.routes} == {"tor-a", "tor-b"}, "the same routes"
    assert {p.hold_time for _, p in agent.service.config.bgp.peers()} == {9}
    assert agent.service.replace_speakers(agent.service.config.bgp) is False


def test_a_speaker_that_will_not_start_gives_way_to_the_old_one(agent: Agent) -> None:
    assert agent.register().status_code == 201
    old, before = agent.speaker, agent.service.config.bgp
    agent.service._make_speaker = lambda bgp: RecordingSpeaker(fail_start=True)  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="would not start"):
        agent.service.replace_speakers(new_speakers(agent, hold_time=9))
    assert agent.service.speaker is old and old.running, "the old speaker runs again"
    assert agent.service.config.bgp == before
    assert agent.peers() == {"tor-a", "tor-b"}


def test_a_family_left_without_peers_is_refused(agent: Agent) -> None:
    assert agent.register().status_code == 201
    bgp = agent.service.config.bgp
    only_v6 = bgp.model_copy(update={"speakers": [s for s in bgp.speakers if s.ip_version == 6]})
    with pytest.raises(AgentError) as refused:
        agent.service.replace_speakers(only_v6)
    assert (refused.value.status, refused.value.field) == (409, "vip_ip")
    assert agent.service.config.bgp == bgp and agent.peers() == {"tor-a", "tor-b"}
