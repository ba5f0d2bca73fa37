"""Pure logic: peer profile validation and the configuration each speaker driver generates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from l3dist.bgp.base import Route
from l3dist.bgp.bird import BirdDriver
from l3dist.bgp.exabgp import ExaBgpDriver
from l3dist.contracts.agent_config import BgpConfig, BgpPeerProfile, BgpSpeakerConfig
from l3dist_lab.config import LabConfig
from l3dist_lab.fabric import frr_config

PEER: dict[str, Any] = {"id": "p1", "peer_ip": "198.18.0.1", "remote_as": 65000}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"remote_as": 0}, "remote_as"),
        ({"remote_as": 4294967296}, "remote_as"),
        ({"ttl_hops": 0}, "ttl_hops"),
        ({"ttl_hops": 255}, "ttl_hops"),
        ({"hold_time": 2}, "hold_time"),
        ({"hold_time": 65536}, "hold_time"),
        ({"hold_time": 3, "keepalive_interval": 3}, "keepalive_interval must be below"),
        ({"auth_type": "md5"}, "needs a password"),
        ({"password": "x"}, "only valid with auth_type md5"),
        ({"auth_type": "sha1", "password": "x"}, "auth_type"),
        ({"peer_ip": "10.0.0.300"}, "peer_ip"),
        ({"surprise": 1}, "surprise"),
        ({"bfd_transmit_interval_ms": 5}, "bfd_transmit_interval_ms"),
        ({"bfd_receive_interval_ms": 60001}, "bfd_receive_interval_ms"),
        ({"bfd_detect_multiplier": 1}, "bfd_detect_multiplier"),
    ],
)
def test_bad_peer_profiles_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BgpPeerProfile.model_validate({**PEER, **overrides})


def test_good_peer_profile_limits() -> None:
    for hold in (0, 3, 65535):
        BgpPeerProfile.model_validate({**PEER, "hold_time": hold})
    profile = BgpPeerProfile.model_validate(
        {**PEER, "auth_type": "md5", "password": "s3cret", "ttl_hops": 254}
    )
    assert profile.md5_password == "s3cret"
    assert "s3cret" not in profile.model_dump_json()


def test_speaker_refuses_a_peer_of_the_other_family() -> None:
    with pytest.raises(ValidationError, match="is not IPv6"):
        BgpSpeakerConfig.model_validate(
            {"id": "s6", "ip_version": 6, "local_as": 64512, "peers": [PEER]}
        )


def bgp(md5: bool = True, ttl_hops: int = 1) -> BgpConfig:
    peer4 = {
        **PEER,
        "ttl_hops": ttl_hops,
        "hold_time": 3,
        "keepalive_interval": 1,
        "bfd_enabled": True,
        "bfd_transmit_interval_ms": 50,
        "bfd_receive_interval_ms": 60,
        "bfd_detect_multiplier": 4,
    }
    if md5:
        peer4 |= {"auth_type": "md5", "password": "pw"}
    peer6 = {"id": "p6", "peer_ip": "fd00::1", "remote_as": 65000}
    return BgpConfig.model_validate(
        {
            "router_id": "198.18.0.11",
            "speakers": [
                {"id": "s4", "ip_version": 4, "local_as": 64512, "peers": [peer4]},
                {"id": "s6", "ip_version": 6, "local_as": 64512, "peers": [peer6]},
            ],
        }
    )


LOCAL = {4: "198.18.0.11", 6: "fd00::b"}
ROUTES = frozenset(
    {
        Route("198.18.100.10/32", "198.18.1.11", "p1"),
        Route("fd00:100::a/128", "fd00:1::b", "p6"),
    }
)


def test_bird_config_sets_next_hop_origin_md5_gtsm_and_timers(tmp_path: Path) -> None:
    driver = BirdDriver(bgp(ttl_hops=2), LOCAL, tmp_path)
    main = driver.main_config()
    assert "local 198.18.0.11 as 64512;" in main
    assert "neighbor 198.18.0.1 as 65000;" in main
    assert 'password "pw";' in main
    assert "ttl security on;" in main and "multihop 2;" in main
    assert "hold time 3;" in main and "keepalive time 1;" in main
    assert "local fd00::b as 64512;" in main
    assert "protocol bfd" in main
    assert "bfd { min rx interval 60 ms; min tx interval 50 ms; multiplier 4; };" in main
    assert main.count("  bfd { min") == 1  # only the peer that enables it
    routes = driver.routes_config(ROUTES)
    assert "route 198.18.100.10/32 blackhole;" in routes
    assert "route fd00:100::a/128 blackhole;" in routes
    p1_filter = routes.split("filter export_p_p1")[1].split("filter ")[0]
    assert "bgp_next_hop = 198.18.1.11;" in p1_filter
    assert "bgp_origin = ORIGIN_IGP;" in p1_filter
    assert "fd00" not in p1_filter  # each peer gets only its own routes


def test_bird_config_without_optional_settings(tmp_path: Path) -> None:
    main = BirdDriver(bgp(md5=False), LOCAL, tmp_path).main_config()
    assert "password" not in main
    assert "multihop" not in main


def test_exabgp_config_and_commands(tmp_path: Path) -> None:
    driver = ExaBgpDriver(bgp(ttl_hops=1), LOCAL, tmp_path)
    conf = driver.config()
    assert "passive false;" in conf
    assert 'md5-password "pw";' in conf
    assert "outgoing-ttl 255;" in conf and "incoming-ttl 255;" in conf
    assert "hold-time 3;" in conf
    route = sorted(ROUTES)[0]
    assert driver._announce(route) == (
        "neighbor 198.18.0.1 announce route 198.18.100.10/32 next-hop 198.18.1.11 origin igp"
    )


def test_frr_config_has_listen_ranges_multipath_and_password() -> None:
    cfg = LabConfig(bgp_password="pw")
    conf = frr_config(cfg)
    assert "bgp listen range 198.18.0.0/24 peer-group AMPHORAE4" in conf
    assert "bgp listen range fd00:198:18::/64 peer-group AMPHORAE6" in conf
    assert conf.count("maximum-paths 64") == 2
    assert "bgp bestpath as-path multipath-relax" in conf
    assert "neighbor AMPHORAE4 password pw" in conf
    assert "set ipv6 next-hop prefer-global" in conf
    assert "password" not in frr_config(LabConfig())
