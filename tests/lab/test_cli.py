"""The console script end to end: benchmarks and lab status, as an operator runs them (the demo:
tests/e2e/test_demo.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

L3DIST = str(Path(sys.executable).with_name("l3dist"))


def l3dist(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([L3DIST, *args], capture_output=True, text=True, timeout=timeout)


def run_json(*args: str) -> Any:
    result = l3dist(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_bench_lifecycle_json(lab_prerequisites: None) -> None:
    result = run_json("bench", "lifecycle", "--json", "--runs", "1")
    for phase in ("amphora_build", "create_to_active", "create_to_traffic",
                  "populated_to_traffic", "member_add", "listener_add", "scale_out"):  # fmt: skip
        stats = result[phase]
        assert 0 < stats["min"] <= stats["median"] <= stats["max"] and stats["samples"] == 1
    assert result["create_to_traffic"]["median"] > result["create_to_active"]["median"]
    assert set(result["ratio_to_amphora_build"]) == {
        "create_to_active",
        "create_to_traffic",
        "populated_to_traffic",
        "scale_out",
    }
    carrying, member, listener = result["goals"]
    ratio = result["populated_to_traffic"]["median"] / result["amphora_build"]["median"]
    assert abs(carrying["value"] - ratio) <= 0.06 * ratio  # the JSON's medians are rounded
    assert (carrying["target"], carrying["unit"]) == (3.0, "x")
    assert carrying["met"] == (carrying["value"] <= 3.0)
    for change, phase in ((member, "member_add"), (listener, "listener_add")):
        assert (change["value"], change["target"]) == (result[phase]["median"], 0.3), change
    assert l3dist("lab", "status").stdout.strip() == "lab is down"


def test_bench_failover_json(lab_prerequisites: None) -> None:
    result = run_json("bench", "failover", "--json", "--runs", "1", "--whole-runs", "1")
    events = ("hard_bfd", "hard_hold_timer", "recovery", "soft", "soft_recovery", "whole_again")
    for event in events:
        stats = result[event]
        assert 0 < stats["min"] <= stats["median"] <= stats["max"] and stats["samples"] == 1
    assert [g["goal"].split(" (")[0] for g in result["goals"]] == [
        "a hard failure out of the FIB",
        "capacity restored after a hard failure",
    ]
    # BFD acts well before the hold timer, whatever this machine's speed.
    assert result["hard_bfd"]["median"] < result["hard_hold_timer"]["median"]
    assert set(result["requests_lost"]) == {"hard_bfd", "hard_hold_timer", "soft"}
    assert l3dist("lab", "status").stdout.strip() == "lab is down"


def test_bench_flows_json_ipv6(lab_prerequisites: None) -> None:
    """A scale-out and a dead amphora with rescue off and on in one run, on IPv6: the baseline
    breaks what the router moved, rescue breaks nothing but a dead amphora's own connections.
    (The drains are tests/lab/test_flow_rescue.py's; the whole bench runs every scenario.)"""
    scenarios = ("scale_out", "dead")
    chosen = [arg for name in scenarios for arg in ("--scenario", name)]
    result = run_json("bench", "flows", "--json", "--connections", "60", "--ip-version", "6",
                      *chosen)  # fmt: skip
    assert (result["ip_version"], result["connections"]) == (6, 60)
    assert result["scenarios"] == list(scenarios) and "drain_first" not in result
    for scenario in scenarios:
        off, on = result[scenario]["rescue_off"], result[scenario]["rescue_on"]
        assert off["broken"] > 0, (scenario, "the baseline: the router moved flows", off)
        assert on["flows_moved"] > 0 and on["copies_per_rescued_packet"] >= 1, (scenario, on)
        if scenario == "dead":
            assert on["broken_not_own"] == 0 and on["broken"] == on["own_connections"] > 0
            assert on["dead_owner_resets"] >= on["own_connections"]
        else:
            assert on["broken"] == 0, (scenario, on)
            assert on["dead_owner_resets"] == 0, (scenario, on)
    cost = result["cost"]
    assert cost["cpu"]["on_vs_off"] > 0 and cost["rtt"]["rescue_on"]["ms_after"]
    assert l3dist("lab", "status").stdout.strip() == "lab is down"


def test_bench_announce_json(lab_prerequisites: None) -> None:
    result = run_json("bench", "announce", "--json", "--runs", "3")
    for path in ("agent", "speaker_direct"):
        for event in ("announce_ms", "withdraw_ms"):
            stats = result[path][event]
            assert 0 < stats["min"] <= stats["median"] <= stats["max"]
    assert set(result["l3dist_overhead_ms"]) == {"announce_ms", "withdraw_ms"}
    assert result["runs"] == 3
    goal = result["goal"]
    assert goal["value"] == result["l3dist_overhead_ms"]["announce_ms"]
    assert goal["met"] is (goal["value"] <= goal["target"])


def test_lab_status_shows_sessions_and_routes(lab_prerequisites: None) -> None:
    l3dist("lab", "down")
    try:
        assert l3dist("lab", "up").returncode == 0
        created = l3dist("lab", "amphora", "create")
        assert created.returncode == 0, created.stderr
        amphora_id = created.stdout.split()[0]
        assert l3dist("lab", "announce", "198.18.100.10", "--amphora", amphora_id).returncode == 0
        deadline = time.monotonic() + 15
        status = run_json("lab", "status", "--json")
        while "198.18.100.10/32" not in status["routes"] and time.monotonic() < deadline:
            time.sleep(0.2)
            status = run_json("lab", "status", "--json")
        frontend_ip = status["amphorae"][0]["frontend_ip4"]
        assert frontend_ip.startswith("198.18.1.")  # the front-end network's IPAM chose it
        assert status["routes"]["198.18.100.10/32"] == [frontend_ip]
        assert status["up"] is True
        assert "l3d-tor" in status["namespaces"]
        assert [a["id"] for a in status["amphorae"]] == [amphora_id]
        assert status["amphorae"][0]["agent_running"] is True
        table = l3dist("lab", "status").stdout
        assert "BGP sessions on the ToR" in table and "198.18.100.10/32" in table
        bad = l3dist("lab", "announce", "198.18.100.10", "--amphora", "no-such-amphora")
        assert bad.returncode == 1 and "no lab amphora" in bad.stdout
    finally:
        l3dist("lab", "down")


def test_not_root_gets_a_clear_message(lab_prerequisites: None) -> None:
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run the CLI as another user")
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", L3DIST, "demo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "needs root" in result.stdout


def test_bench_distributor_json(lab_prerequisites: None) -> None:
    """Both modes in one run, alternated: sessions, registration to FIB, failure to FIB."""
    result = run_json(
        "bench", "distributor", "--json", "--vips", "1", "--load-balancers", "1", "--runs", "1"
    )
    # combined: each of 3 amphorae a session per family; dedicated: the 2 distributors only
    assert result["sessions"] == {"combined": {"1": 6}, "dedicated": {"1": 4}}
    for mode in ("combined", "dedicated"):
        assert result["register_to_fib_s"]["1"][mode]["median"] > 0
        for kind in ("hard", "soft"):
            assert 0 < result["failure_to_fib_ms"][kind][mode]["median"] < 10000
    assert result["failure_to_fib_ms"]["hard"]["goal"]["target"] == 300.0
    assert l3dist("lab", "status").stdout.strip() == "lab is down"


def test_bench_fip_json(lab_prerequisites: None) -> None:
    """A floating IP against its VIP, one run of each variant and one frozen host."""
    result = run_json("bench", "fip", "--json", "--runs", "1", "--failures", "1")
    for event in ("associate_to_answering", "vip_start_to_answering", "dissociate_to_silent",
                  "vip_stop_to_silent"):  # fmt: skip
        stats = result[event]
        assert 0 < stats["min"] <= stats["median"] <= stats["max"] < 30000
        assert stats["samples"] == 1
    assert set(result["requests_lost"]) == {"floating_ip", "vip"}
    assert [g["unit"] for g in result["goals"]] == ["ms", "ms", "requests"]
    assert l3dist("lab", "status").stdout.strip() == "lab is down"
