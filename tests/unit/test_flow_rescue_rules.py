"""The flow-rescue rule set: what is copied where, per IP version, and that nft accepts it."""

from __future__ import annotations

import subprocess

from l3dist.amphora_agent.flow_rescue import ruleset

MACS = ["02:00:00:00:00:01"]


def test_rules_per_family() -> None:
    script = ruleset(
        ["198.18.100.1", "fd00::1"],
        ["198.18.1.101", "198.18.1.102", "fd00:1::101"],
        MACS,
        "fe0",
    )
    assert (
        'counter name "to_all" dup to 198.18.1.101 device "fe0" dup to 198.18.1.102 device '
        '"fe0" drop'
    ) in script
    # only a router's packets are copied: a peer's copy that is not ours is dropped first
    assert script.index('ether saddr != @routers counter name "not_ours" drop') < script.index(
        'counter name "to_all"'
    )
    assert 'dup to fd00:1::101 device "fe0" drop' in script
    assert "ip daddr != @vips accept" in script and "ip6 daddr != @vips accept" in script
    # Atomic replace: each table is created (if missing) and deleted before it is defined again.
    assert script.index("delete table ip l3dist_rescue") < script.index("table ip l3dist_rescue {")


def test_a_family_without_vips_has_no_table() -> None:
    script = ruleset(["198.18.100.1"], ["198.18.1.101", "fd00:1::101"], MACS, "fe0")
    assert "table ip6 l3dist_rescue {" not in script
    assert "delete table ip6 l3dist_rescue" in script


def test_no_peers_drops_instead_of_copying() -> None:
    script = ruleset(["198.18.100.1"], [], MACS, "fe0")
    assert '    counter name "to_all" drop' in script and "dup" not in script


def test_a_data_segment_retransmitted_long_after_reaches_tcp() -> None:
    """The dead-owner rule: a segment (same flow and sequence number) seen again once its
    first sighting left the 350 ms "recent" window is let through, before the copy-and-drop
    rule; a first sighting opens the window; sightings expire."""
    script = ruleset(["fd00::1"], ["fd00:1::101"], MACS, "fe0")
    # the sequence number is carried in the packet mark (a set keyed on it directly cannot be
    # listed by nft 1.0.6 once it holds two elements)
    key = "ip6 saddr . tcp sport . ip6 daddr . tcp dport . meta mark"
    mark = "tcp flags & psh == psh meta mark set tcp sequence"
    late = f'tcp flags & psh == psh {key} @seen {key} != @recent counter name "dead_owner" accept'
    first = f"tcp flags & psh == psh {key} != @seen add @recent {{ {key} }}"
    remember = f"tcp flags & psh == psh add @seen {{ {key} }}"
    rules = (mark, late, first, remember, 'counter name "to_all"')
    positions = [script.index(rule) for rule in rules]
    assert positions == sorted(positions)
    assert f"set recent {{ typeof {key}; flags dynamic,timeout; timeout 350ms;" in script


def test_nft_accepts_the_rules() -> None:
    script = ruleset(["198.18.100.1", "fd00::1"], ["198.18.1.101", "fd00:1::101"], MACS, "lo")
    checked = subprocess.run(["nft", "-c", "-f", "-"], input=script, text=True,
                             capture_output=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_pickup_rules_take_unknown_router_flows_as_ours_and_drop_peer_copies() -> None:
    script = ruleset(["198.18.100.1"], ["198.18.1.101"], MACS, "fe0", pickup=True)
    chain = script[script.index("chain prerouting") :]
    assert "dup" not in chain and "dead_owner" not in chain
    assert chain.index('ether saddr != @routers counter name "not_ours" drop') < chain.index(
        "    accept\n"
    )


def test_owner_learning_with_the_peers_whose_mac_is_known() -> None:
    """The owner answers a peer's copy of its flow (TTL 255, back to that peer's address by its
    MAC, once per FEEDBACK_MS per flow); the answer puts the flow in that peer's owned_by set
    there, and flows in it are copied to that peer only. Unknown MACs: copies to everyone."""
    peers = ["198.18.1.101", "198.18.1.102"]
    script = ruleset(
        ["198.18.100.1"], peers, MACS, "fe0", peer_macs={peers[1]: "02:00:00:00:00:12"}
    )
    flow = "ip saddr . tcp sport . ip daddr . tcp dport"
    answer = (
        f"ether saddr @peer_macs ct state established {flow} != @fed_back add @fed_back "
        f'{{ {flow} }} ip ttl set 255 counter name "owner_feedback" dup to ether saddr map '
        '@peer_ips device "fe0" accept'
    )
    learn = (
        f"ether saddr 02:00:00:00:00:12 ip ttl 254 update @owned_by_0 {{ {flow} }} "
        'counter name "owner_learned" drop'
    )
    one_copy = f'{flow} @owned_by_0 counter name "to_owner" dup to 198.18.1.102 device "fe0" drop'
    established = "ct state established,related accept"
    not_ours = 'ether saddr != @routers counter name "not_ours" drop'
    to_all = 'counter name "to_all" dup'
    order = [script.index(r) for r in (answer, established, learn, not_ours, one_copy, to_all)]
    assert order == sorted(order)
    assert "02:00:00:00:00:12 : 198.18.1.102" in script and "owned_by_1" not in script
