"""Pure logic: peer profile validation and the configuration each speaker driver generates."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from l3dist.bgp.base import Route, RouteRefused
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
POOLS = [ipaddress.ip_network("198.18.100.0/24"), ipaddress.ip_network("fd00:100::/64")]
ROUTES = frozenset(
    {
        Route("198.18.100.10/32", "198.18.1.11", "p1"),
        Route("fd00:100::a/128", "fd00:1::b", "p6"),
    }
)


def bird(config: BgpConfig, tmp_path: Path, pools: list[Any] | None = None) -> BirdDriver:
    return BirdDriver(config, LOCAL, tmp_path, anycast_prefixes=POOLS if pools is None else pools)


def exabgp(config: BgpConfig, tmp_path: Path, pools: list[Any] | None = None) -> ExaBgpDriver:
    return ExaBgpDriver(config, LOCAL, tmp_path, anycast_prefixes=POOLS if pools is None else pools)


def test_bird_config_sets_next_hop_origin_md5_gtsm_and_timers(tmp_path: Path) -> None:
    driver = bird(bgp(ttl_hops=2), tmp_path)
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
    p1_routes = routes.split("function routes_p_p1()")[1].split("function ")[0]
    assert "bgp_next_hop = 198.18.1.11;" in p1_routes
    assert "bgp_origin = ORIGIN_IGP;" in p1_routes
    assert "fd00" not in p1_routes  # each peer gets only its own routes


def test_bird_config_without_optional_settings(tmp_path: Path) -> None:
    main = bird(bgp(md5=False), tmp_path).main_config()
    assert "password" not in main
    assert "multihop" not in main


def test_exabgp_config_and_commands(tmp_path: Path) -> None:
    driver = exabgp(bgp(ttl_hops=1), tmp_path)
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


# -- route safety (issue 14): the speaker's own export policy ---------------------------------


def test_bird_export_filters_admit_only_host_routes_inside_the_pools(tmp_path: Path) -> None:
    """The guard is in the main configuration (written from the config drive's prefixes), so
    the routes file, rewritten on every change, cannot widen it."""
    main = bird(bgp(), tmp_path, [*POOLS, ipaddress.ip_network("203.0.113.0/28")]).main_config()
    assert (
        "filter export_p_p1 {\n"
        "  # Route safety: only host routes inside the anycast prefixes ever leave here.\n"
        "  if ! (net ~ [ 198.18.100.0/24{32,32}, 203.0.113.0/28{32,32} ]) then reject;\n"
        "  if routes_p_p1() then accept;\n"
        "  reject;\n"
        "}\n"
    ) in main
    assert (
        "filter export_p_p6 {\n"
        "  # Route safety: only host routes inside the anycast prefixes ever leave here.\n"
        "  if ! (net ~ [ fd00:100::/64{128,128} ]) then reject;\n"
        "  if routes_p_p6() then accept;\n"
        "  reject;\n"
        "}\n"
    ) in main
    assert main.index("include ") < main.index("filter export_p_p1") < main.index("protocol bgp")
    assert "export filter export_p_p1;" in main and "export filter export_p_p6;" in main
    assert "export all" not in main and "export where" not in main


def test_bird_routes_file_defines_no_filter(tmp_path: Path) -> None:
    """A foreign route in the routes file is only a route: the export decision is not there."""
    foreign = frozenset({Route("8.8.8.8/32", "198.18.1.11", "p1"), Route("0.0.0.0/0", "x", "p1")})
    routes = bird(bgp(), tmp_path).routes_config(ROUTES | foreign)
    assert "filter" not in routes and "accept" not in routes
    assert "function routes_p_p1()\n{\n" in routes and "  return false;\n}\n" in routes


def test_bird_without_pools_of_a_family_exports_nothing_of_it(tmp_path: Path) -> None:
    main = bird(bgp(), tmp_path, [POOLS[0]]).main_config()
    p6 = main.split("filter export_p_p6 {")[1].split("}")[0]
    assert "reject;  # no IPv6 anycast prefix: nothing to send" in p6
    assert "accept" not in p6
    nothing = bird(bgp(), tmp_path, []).main_config()
    assert nothing.count("reject;  # no IPv") == 2 and "then accept" not in nothing


@pytest.mark.skipif(not os.path.exists("/usr/sbin/bird"), reason="BIRD 2 is not installed")
def test_bird_accepts_the_generated_configuration(tmp_path: Path) -> None:
    import subprocess

    for config, routes in ((bgp(), ROUTES), (distributor_bgp(), THREE_PATHS)):
        driver = bird(config, tmp_path)
        driver._write(routes | {Route("8.8.8.8/32", "198.18.1.11", "p1")})
        parsed = subprocess.run(
            ["/usr/sbin/bird", "-p", "-c", str(driver.conf_path)], capture_output=True, text=True
        )
        assert parsed.returncode == 0, parsed.stderr


def distributor_bgp(nexthop_bfd: bool = True) -> BgpConfig:
    """A dedicated distributor's speakers: ADD-PATH, and BFD to each next hop."""
    data = bgp(md5=False).model_dump(mode="json", context={"secrets": True})
    data["add_path"] = True
    if nexthop_bfd:
        data["nexthop_bfd"] = {"transmit_interval_ms": 40, "receive_interval_ms": 30}
    return BgpConfig.model_validate(data)


THREE_PATHS = frozenset(
    Route("198.18.100.10/32", nexthop, "p1")
    for nexthop in ("198.18.1.11", "198.18.1.12", "198.18.1.13")
) | {Route("198.18.100.11/32", "198.18.1.12", "p1"), Route("fd00:100::a/128", "fd00:1::b", "p6")}


def test_bird_gives_each_next_hop_its_own_route_and_sends_every_path(tmp_path: Path) -> None:
    driver = bird(distributor_bgp(), tmp_path)
    main = driver.main_config()
    assert main.count("    add paths tx;") == 2  # both peers' channels
    assert "min rx interval 30 ms;" in main and "min tx interval 40 ms;" in main
    routes = driver.routes_config(THREE_PATHS)
    # One static protocol per next hop: three routes for the VIP in BIRD's table.
    for nexthop in ("198_18_1_11", "198_18_1_12", "198_18_1_13"):
        assert f"protocol static nh_{nexthop} {{" in routes
    assert routes.count("route 198.18.100.10/32 via ") == 3
    assert "route 198.18.100.10/32 via 198.18.1.12 bfd;" in routes
    assert "route 198.18.100.11/32 via 198.18.1.12 bfd;" in routes
    v6 = "protocol static nh_fd00_1__b {\n  ipv6;\n  route fd00:100::a/128 via fd00:1::b bfd;"
    assert v6 in routes
    p1 = routes.split("function routes_p_p1()")[1].split("function ")[0]
    # One test per next hop, with a prefix set (not one per route).
    assert 'if proto = "nh_198_18_1_12" && net ~ [ 198.18.100.10/32, 198.18.100.11/32 ]' in p1
    assert p1.count("bgp_next_hop = ") == 3


def test_bird_without_next_hop_bfd_announces_blackholes(tmp_path: Path) -> None:
    driver = bird(distributor_bgp(nexthop_bfd=False), tmp_path)
    assert "protocol bfd { }" in driver.main_config()
    routes = driver.routes_config(THREE_PATHS)
    assert routes.count("route 198.18.100.10/32 blackhole;") == 3 and " bfd;" not in routes
    assert "add paths" not in bird(bgp(), tmp_path).main_config()


BIRD_SESSION = """p_p1       BGP        ---        up     04:56:35.279  Established
  BGP state:          Established
    Local capabilities
      ADD-PATH
        RX:
        TX: ipv4
    Neighbor capabilities
      Multiprotocol
        AF announced: ipv4
{neighbor}    Session:          external AS4
"""


@pytest.mark.parametrize(
    ("neighbor", "add_path", "taken"),
    [
        ("      ADD-PATH\n        RX: ipv4\n        TX:\n", True, True),
        ("      ADD-PATH\n        RX: ipv6\n        TX: ipv4\n", True, False),
        ("      Hostname: tor\n", True, False),
        ("      ADD-PATH\n        RX: ipv4\n        TX:\n", False, None),
    ],
)
def test_bird_reports_whether_the_peer_took_add_path(
    tmp_path: Path, neighbor: str, add_path: bool, taken: bool | None
) -> None:
    driver = bird(distributor_bgp() if add_path else bgp(), tmp_path)
    peer = driver.bgp.peer("p1")
    assert peer is not None
    assert driver._add_path_taken(BIRD_SESSION.format(neighbor=neighbor), peer) is taken


FOREIGN = [
    pytest.param("8.8.8.8/32", id="foreign-v4"),
    pytest.param("0.0.0.0/0", id="default-v4"),
    pytest.param("::/0", id="default-v6"),
    pytest.param("198.18.100.0/24", id="pool-aggregate"),
    pytest.param("198.18.100.0/25", id="inside-pool-not-host"),
    pytest.param("198.18.3.10/32", id="member-subnet"),
    pytest.param("2001:db8::1/128", id="foreign-v6"),
    pytest.param("fe80::1/128", id="link-local-v6"),
]


@pytest.mark.parametrize("prefix", FOREIGN)
def test_exabgp_driver_refuses_to_announce_a_foreign_route(tmp_path: Path, prefix: str) -> None:
    driver = exabgp(bgp(), tmp_path)
    peer = "p6" if ":" in prefix else "p1"
    route = Route(prefix, "fd00:1::b" if peer == "p6" else "198.18.1.11", peer)
    with pytest.raises(RouteRefused, match="refusing to announce"):
        driver._announce(route)
    # A change with a refused route sends nothing, not even its good routes (the whole set is
    # refused before the FIFO is opened: there is none here, that would be another error).
    with pytest.raises(RouteRefused):
        driver.apply(ROUTES | {route})
    assert driver.routes == frozenset()


def test_exabgp_driver_without_pools_announces_nothing(tmp_path: Path) -> None:
    driver = exabgp(bgp(), tmp_path, [])
    for route in ROUTES:
        with pytest.raises(RouteRefused, match=r"prefixes \(none\)"):
            driver._announce(route)


def test_exabgp_driver_withdraws_without_the_check(tmp_path: Path) -> None:
    """A withdraw can only remove a route: it is never refused."""
    driver = exabgp(bgp(), tmp_path)
    assert driver._withdraw(Route("8.8.8.8/32", "198.18.1.11", "p1")).startswith(
        "neighbor 198.18.0.1 withdraw route 8.8.8.8/32"
    )


def test_frr_config_filters_what_amphorae_may_send() -> None:
    """The router's layer: host routes inside the anycast pools only, on both peer groups, a
    cap on routes per session, and the pre-policy copy tests read; IPv6 keeps prefer-global."""
    conf = frr_config(LabConfig(max_prefixes=50))
    assert "ip prefix-list ANYCAST4 seq 10 permit 198.18.100.0/24 ge 32 le 32\n" in conf
    assert "ipv6 prefix-list ANYCAST6 seq 10 permit fd00:198:18:100::/64 ge 128 le 128\n" in conf
    v4 = conf.split("address-family ipv4 unicast")[1].split("exit-address-family")[0]
    v6 = conf.split("address-family ipv6 unicast")[1].split("exit-address-family")[0]
    assert "  neighbor AMPHORAE4 prefix-list ANYCAST4 in\n" in v4
    assert "  neighbor AMPHORAE4 maximum-prefix 50\n" in v4
    assert "  neighbor AMPHORAE4 soft-reconfiguration inbound\n" in v4
    assert "  neighbor AMPHORAE6 prefix-list ANYCAST6 in\n" in v6
    assert "  neighbor AMPHORAE6 route-map AMPHORAE6-IN in\n" in v6
    assert "  neighbor AMPHORAE6 maximum-prefix 50\n" in v6
    assert "  neighbor AMPHORAE6 soft-reconfiguration inbound\n" in v6
    assert "ANYCAST6" not in v4 and "ANYCAST4" not in v6


def test_exabgp_offers_add_path_and_names_each_path(tmp_path: Path) -> None:
    driver = exabgp(distributor_bgp(nexthop_bfd=False), tmp_path)
    conf = driver.config()
    assert conf.count("capability { add-path send; }") == 2
    assert "negotiated;" in conf
    route = Route("198.18.100.10/32", "198.18.1.12", "p1")
    assert driver._announce(route, 2) == (
        "neighbor 198.18.0.1 announce route 198.18.100.10/32 path-information 2 "
        "next-hop 198.18.1.12 origin igp"
    )
    assert "capability" not in exabgp(bgp(), tmp_path).config()


def test_a_register_vip_route_does_not_wait_for_next_hop_bfd(tmp_path: Path) -> None:
    """A Register VIP endpoint (a UDP server) runs no BFD: its route is a plain blackhole."""
    endpoint = Route("198.18.100.20/32", "198.18.1.50", "p1", watched=False)
    routes = bird(distributor_bgp(), tmp_path).routes_config(THREE_PATHS | {endpoint})
    assert (
        "protocol static vr_198_18_1_50 {\n  ipv4;\n  route 198.18.100.20/32 blackhole;" in routes
    )
    assert "route 198.18.100.10/32 via 198.18.1.11 bfd;" in routes  # the amphorae still watched
    assert 'if proto = "vr_198_18_1_50" && net ~ [ 198.18.100.20/32 ]' in routes
