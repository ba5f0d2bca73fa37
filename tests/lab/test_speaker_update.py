"""New peer settings for a running amphora (``PUT /1.0/bgp``, what the controller's roll of a
distributor's change sends): the speaker restarts with them, the router sees the new settings
and the session comes back with the VIP announced again, and the host keeps them across an
agent restart. The same settings again change nothing; a peer a registration still names is
not removed."""

from __future__ import annotations

import time

import pytest

from l3dist.amphora_client import AgentClientError
from l3dist.bgp.base import host_prefix
from l3dist.contracts import agent_config
from l3dist.contracts.agent_config import BgpSpeakerConfig
from l3dist_lab import amphora, fabric, site
from l3dist_lab.amphora import LabAmphora, default_peers
from l3dist_lab.config import LabConfig
from l3dist_lab.fib import FibWatcher, has

from .conftest import VIP4

SLOWER_BFD_MS = 300


def changed(speakers: list[BgpSpeakerConfig], **settings: object) -> list[BgpSpeakerConfig]:
    return [s.model_copy(update={"peers": [p.model_copy(update=settings) for p in s.peers]})
            for s in speakers]  # fmt: skip


def wait_for_bfd_interval(amp: LabAmphora, interval: int) -> None:
    def seen() -> int | None:
        peer = fabric.bfd_peer(amp.mgmt_ip4)
        return int(peer["remote-receive-interval"]) if peer else None

    deadline = time.monotonic() + 30
    while seen() != interval:
        assert time.monotonic() < deadline, fabric.bfd_peer(amp.mgmt_ip4)
        time.sleep(0.2)


def test_new_peer_settings_reach_the_router(
    amp: LabAmphora, lab: LabConfig, fib: FibWatcher
) -> None:
    bird = amp.speaker_driver == "bird"
    now = default_peers(lab, bfd=bird)
    with amp.client(timeout=60) as client:
        assert client.update_speakers(now)["changed"] is False, "the same settings: no restart"
        new = changed(now, hold_time=9, bfd_receive_interval_ms=SLOWER_BFD_MS,
                      bfd_transmit_interval_ms=SLOWER_BFD_MS)  # fmt: skip
        start = time.monotonic()
        assert client.update_speakers(new)["changed"] is True
    # The session was made again after the change (with the new settings) ...
    deadline = start + 30
    while (up := fabric.bgp_uptime(amp.mgmt_ip4)) is None or up > time.monotonic() - start:
        assert time.monotonic() < deadline, f"no new session (up {up} s)"
        time.sleep(0.2)
    # ... and the VIP is announced on it again.
    fib.wait_until(host_prefix(VIP4), has(amp.frontend_ip4), timeout=30)
    if bird:  # the router's BFD session runs at the interval the amphora asks for now
        wait_for_bfd_interval(amp, SLOWER_BFD_MS)
    kept = site.assignment(amp.lab_host)
    assert kept is not None
    assert {p.hold_time for _, p in kept.bgp.peers()} == {9}, "kept across a restart"

    # An agent restart resumes the new settings (from the host's assignment): the amphora
    # configuration it builds again at start has them.
    amphora.stop_agent(amp)
    amp.agent_config_path.unlink()
    amphora.start_agent(amp)
    resumed = agent_config.load(amp.agent_config_path)
    assert {p.hold_time for _, p in resumed.bgp.peers()} == {9}
    fib.wait_until(host_prefix(VIP4), has(amp.frontend_ip4), timeout=30)
    if bird:
        wait_for_bfd_interval(amp, SLOWER_BFD_MS)


def test_a_peer_a_registration_names_is_not_removed(amp: LabAmphora, lab: LabConfig) -> None:
    vip = lab.vip(4, 72)
    with amp.client(timeout=60) as client:
        client.plug_vip(vip)
        client.register_amphora(amp.id, vip, amp.frontend_ip4, peer_id="tor-v4")
        try:
            only_v6 = [s for s in default_peers(lab) if s.ip_version == 6]
            with pytest.raises(AgentClientError) as refused:
                client.update_speakers(only_v6)
            assert (refused.value.status, refused.value.field) == (409, "peer_id")
            assert {p["peer_id"] for p in client.bgp_status()["peers"]} == {"tor-v4", "tor-v6"}
        finally:
            client.unregister_amphora(amp.id, vip, amp.frontend_ip4, peer_id="tor-v4")
