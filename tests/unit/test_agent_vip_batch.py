"""``PATCH /1.0/distributor/vips`` on the agent, without a daemon: many VIP routes in one
request, one speaker change and one state write, all or nothing, idempotent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from l3dist.bgp.base import Route

from .test_agent_registrations import Agent

PATH = "/1.0/distributor/vips"


class CountingSpeaker:
    """A recording speaker that also counts how many times it was handed a route set."""

    name = "counting"

    def __init__(self) -> None:
        self.routes: frozenset[Route] = frozenset()
        self.applies = 0

    def apply(self, routes: frozenset[Route]) -> None:
        self.routes, self.applies = routes, self.applies + 1

    def processes(self) -> list[Any]:
        return []


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    made = Agent(tmp_path)
    made.speaker = made.service.speaker = CountingSpeaker()  # type: ignore[assignment]
    yield made
    made.http.close()


def routes(count: int, nexthop: str = "198.18.1.50") -> list[dict[str, str]]:
    return [{"vip_ip": f"198.18.100.{i + 1}", "nexthop_ip": nexthop} for i in range(count)]


def state(agent: Agent) -> Any:
    return json.loads(agent.service.state_path.read_text())["vip_routes"]


def test_many_routes_take_one_speaker_change(agent: Agent) -> None:
    answer = agent.http.patch(PATH, json={"add": routes(200)})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"added": 200, "removed": 0}
    assert agent.speaker.applies == 1  # type: ignore[attr-defined]
    prefixes = {r.prefix for r in agent.speaker.routes}
    assert prefixes == {f"198.18.100.{i + 1}/32" for i in range(200)}
    assert {r.peer_id for r in agent.speaker.routes} == {"tor-a", "tor-b"}
    assert len(state(agent)) == 200
    assert len(agent.http.get(PATH).json()["vips"]) == 200

    # The same again is a no-op (a resumed flow); half of them withdrawn in one more change.
    again = agent.http.patch(PATH, json={"add": routes(200)})
    assert again.json() == {"added": 0, "removed": 0}
    assert agent.speaker.applies == 1  # type: ignore[attr-defined]
    half = agent.http.patch(PATH, json={"remove": routes(100), "add": []})
    assert half.json() == {"added": 0, "removed": 100}
    assert agent.speaker.applies == 2  # type: ignore[attr-defined]
    assert len(state(agent)) == 100


def test_one_bad_entry_refuses_the_batch_naming_it_and_changes_nothing(agent: Agent) -> None:
    assert agent.http.patch(PATH, json={"add": routes(3)}).status_code == 200
    before = (agent.speaker.routes, state(agent), agent.speaker.applies)  # type: ignore[attr-defined]
    for entry, status, field in (
        ({"vip_ip": "203.0.113.9", "nexthop_ip": "198.18.1.50"}, 403, "add[2].vip_ip"),
        ({"vip_ip": "198.18.100.90", "nexthop_ip": "10.9.9.9"}, 400, "add[2].nexthop_ip"),
        ({"vip_ip": "198.18.100.90", "nexthop_ip": "198.18.1.50", "peer_id": "nope"}, 404,
         "add[2].peer_id"),
        # without ADD-PATH, one next hop per VIP and peer: a second one in the same batch
        ({"vip_ip": "198.18.100.80", "nexthop_ip": "198.18.1.51"}, 409, "add[2].vip_ip"),
    ):  # fmt: skip
        body = {"add": [
                             {"vip_ip": "198.18.100.80", "nexthop_ip": "198.18.1.50"},
                             {"vip_ip": "198.18.100.81", "nexthop_ip": "198.18.1.50"}, entry],
                "remove": routes(3)}  # fmt: skip
        answer = agent.http.patch(PATH, json=body)
        assert (answer.status_code, answer.json()["field"]) == (status, field), answer.text
        assert (agent.speaker.routes, state(agent), agent.speaker.applies) == before  # type: ignore[attr-defined]
    malformed = agent.http.patch(PATH, json={"add": [{"vip_ip": "198.18.100.1"}]})
    assert (malformed.status_code, malformed.json()["field"]) == (400, "add.0.nexthop_ip")
