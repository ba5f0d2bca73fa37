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
        'ether saddr @routers counter name "rescued" dup to 198.18.1.101 device "fe0" '
        'dup to 198.18.1.102 device "fe0" drop'
    ) in script
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
    assert 'ether saddr @routers counter name "rescued" drop' in script and "dup" not in script


def test_nft_accepts_the_rules() -> None:
    script = ruleset(["198.18.100.1", "fd00::1"], ["198.18.1.101", "fd00:1::101"], MACS, "lo")
    checked = subprocess.run(["nft", "-c", "-f", "-"], input=script, text=True,
                             capture_output=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
