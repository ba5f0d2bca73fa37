"""The lab fabric: a ToR namespace running FRR with BGP multipath, plus a client namespace.

The ToR stands in for the operator's router. It accepts BGP sessions from any address of the
management network (``bgp listen range``), so amphorae peer without per-amphora router config,
and installs anycast VIP routes as ECMP into its kernel FIB.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from l3dist.common import config
from l3dist.common.process import ManagedProcess, kill_from_pidfile, kill_group, pid_alive
from l3dist.db.session import Database, upgrade
from l3dist.network.catalog import stable_id
from l3dist.network.static import OWNER_CONTROLLER
from l3dist_lab import networks, plumbing
from l3dist_lab.config import (
    CLIENT_NS,
    FRR_CONF_DIR,
    FRR_RUN_DIR,
    HOST_MGMT_IF,
    PREFIX,
    STATE_DIR,
    TOR_NS,
    LabConfig,
)

CONTROLLER_DEVICE = "l3dist-controller"

FRR_DAEMONS = ("zebra", "bgpd", "bfdd")
FRR_BIN = Path("/usr/lib/frr")

TOR_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    # Deterministic ECMP: hash on the 5-tuple only (trap 1 of the lab notes).
    "net.ipv4.fib_multipath_hash_policy": "3",
    "net.ipv4.fib_multipath_hash_fields": "0x0037",
    "net.ipv6.fib_multipath_hash_policy": "3",
    "net.ipv6.fib_multipath_hash_fields": "0x0037",
}


def frr_config(cfg: LabConfig) -> str:
    """FRR configuration of the ToR: listen-range peer groups, multipath, BFD, optional MD5,
    and the operator's last layer of route safety: each amphora peer group accepts only host
    routes (/32, /128) inside the anycast pools and the floating IP pools (an inbound
    prefix-list in each address family) and a session that has more than ``max_prefixes``
    accepted routes is reset.
    Measured on FRR 8.4: the cap counts accepted routes only (``force``, meant to count the
    filtered ones too, did not trip with 201 filtered routes), and a dynamic (listen-range)
    neighbour reset by it is made again when the speaker reconnects, so a flooding amphora
    flaps its own session, never the others'. ``soft-reconfiguration inbound`` keeps what each
    amphora sent before policy, so a test can tell the speaker's own filter from the router's
    (``show bgp ... neighbors PEER received-routes``); it is a testing aid, an operator's
    router need not hold rejected routes (FRR's BMP needs it for its pre-policy view too).
    The ToR streams BMP (pre- and post-policy, both families, and a statistics report per
    session every second: how the collector learns a session is gone, as FRR 8.4 sends no Peer
    Down for a deleted dynamic neighbour) to the controller's router view, retrying every
    0.1-1 s while no collector listens."""
    password = f" neighbor {{pg}} password {cfg.bgp_password}\n" if cfg.bgp_password else ""
    groups = ""
    for pg in ("AMPHORAE4", "AMPHORAE6"):
        groups += (
            f" neighbor {pg} peer-group\n"
            f" neighbor {pg} remote-as external\n"
            f" neighbor {pg} timers {cfg.keepalive} {cfg.hold_time}\n"
            f" neighbor {pg} timers connect 1\n"
            f" neighbor {pg} ttl-security hops 1\n"
            f" neighbor {pg} bfd\n"
            f" neighbor {pg} bfd profile amphorae\n" + password.format(pg=pg)
        )
    collector = cfg.mgmt.host(4, cfg.controller_host_index)
    return f"""frr version 8.4
frr defaults datacenter
hostname {TOR_NS}
log stdout informational
no ipv6 forwarding
ipv6 forwarding
!
bfd
 profile amphorae
  detect-multiplier {cfg.bfd_multiplier}
  receive-interval {cfg.bfd_interval_ms}
  transmit-interval {cfg.bfd_interval_ms}
 exit
exit
!
ip prefix-list ANYCAST4 seq 10 permit {cfg.anycast_v4} ge 32 le 32
ip prefix-list ANYCAST4 seq 20 permit {cfg.floating_v4} ge 32 le 32
ipv6 prefix-list ANYCAST6 seq 10 permit {cfg.anycast_v6} ge 128 le 128
ipv6 prefix-list ANYCAST6 seq 20 permit {cfg.floating_v6} ge 128 le 128
!
route-map AMPHORAE6-IN permit 10
 set ipv6 next-hop prefer-global
exit
!
router bgp {cfg.tor_asn}
 bgp router-id {cfg.mgmt.gateway(4)}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 bgp bestpath as-path multipath-relax
{groups} bgp listen range {cfg.mgmt.v4} peer-group AMPHORAE4
 bgp listen range {cfg.mgmt.v6} peer-group AMPHORAE6
 !
 address-family ipv4 unicast
  neighbor AMPHORAE4 activate
  neighbor AMPHORAE4 soft-reconfiguration inbound
  neighbor AMPHORAE4 prefix-list ANYCAST4 in
  neighbor AMPHORAE4 maximum-prefix {cfg.max_prefixes}
  maximum-paths 64
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor AMPHORAE6 activate
  neighbor AMPHORAE6 soft-reconfiguration inbound
  neighbor AMPHORAE6 prefix-list ANYCAST6 in
  neighbor AMPHORAE6 route-map AMPHORAE6-IN in
  neighbor AMPHORAE6 maximum-prefix {cfg.max_prefixes}
  maximum-paths 64
 exit-address-family
 !
 bmp targets l3dist
  bmp connect {collector} port {cfg.bmp_port} min-retry 100 max-retry 1000
  bmp stats interval 1000
  bmp monitor ipv4 unicast pre-policy
  bmp monitor ipv4 unicast post-policy
  bmp monitor ipv6 unicast pre-policy
  bmp monitor ipv6 unicast post-policy
 exit
exit
!
"""


def _frr_process(daemon: str) -> ManagedProcess:
    args = [str(FRR_BIN / daemon), "-N", TOR_NS, "-A", "127.0.0.1", "-u", "frr", "-g", "frr"]
    if daemon == "zebra":
        # Without it zebra changes an IPv6 route by deleting it and adding the new one: for
        # ~20 us the VIP has no route and a SYN then gets "network unreachable" (measured: 1
        # in ~30,000 new connections during a scale-out). With it, one atomic replace, as IPv4.
        args.append("--v6-rr-semantics")
    if daemon == "bgpd":
        # The BMP module (RFC 7854): the router streams its view to l3dist's collector.
        args += ["-M", "bmp"]
    argv = plumbing.netns_exec_argv(TOR_NS, args)
    return ManagedProcess(f"frr-{daemon}", argv, STATE_DIR, marker=f"-N {TOR_NS}")


def _wait_for(paths: list[Path], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.exists() for p in paths):
            return
        time.sleep(0.05)
    missing = [str(p) for p in paths if not p.exists()]
    raise RuntimeError(f"FRR did not start in {TOR_NS}: missing {missing}")


def check_host_free(cfg: LabConfig) -> None:
    """Refuse to start when the host already routes the lab's management subnet elsewhere."""
    out = subprocess.run(
        ["ip", "-j", "route", "show", "match", str(cfg.mgmt.v4[1])],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for route in json.loads(out or "[]"):
        if route.get("dst") != "default" and route.get("dev") != HOST_MGMT_IF:
            raise RuntimeError(
                f"the host already routes {cfg.mgmt.v4} via {route.get('dev')}; "
                "the lab would collide with it"
            )


def up(cfg: LabConfig | None = None) -> None:
    """Build the fabric (idempotent: what exists is kept)."""
    cfg = cfg or LabConfig()
    if shutil.which("vtysh") is None or not (FRR_BIN / "bgpd").exists():
        raise RuntimeError("FRR is not installed (apt-get install frr)")
    check_host_free(cfg)
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    (STATE_DIR / "lab.json").write_text(json.dumps({"tor_asn": cfg.tor_asn}))

    plumbing.create_namespace(TOR_NS, TOR_SYSCTLS)
    # The site's networks (management, front-end, anycast, member) as its cabling: bridges in
    # the ToR, their router; the lab's records of them (its members' ports) in its database.
    driver = network_driver(migrate=True)
    networks.build_lab_networks(driver, cfg)

    # Client: outside the cloud; reaches the anycast VIPs only through the ToR.
    plumbing.create_namespace(CLIENT_NS)
    plumbing.add_veth(TOR_NS, cfg.client.bridge, CLIENT_NS, "eth0")
    for version in (4, 6):
        plen = cfg.client.subnet(version).prefixlen
        plumbing.add_address(TOR_NS, cfg.client.bridge, f"{cfg.client.gateway(version)}/{plen}")
        plumbing.add_address(CLIENT_NS, "eth0", f"{cfg.client.host(version, 2)}/{plen}")
        plumbing.add_default_route(CLIENT_NS, cfg.client.gateway(version))

    # The controller's port on lb-mgmt-net (the host namespace: API, tests, benchmarks): its
    # address is reserved in the driver's IPAM; the host side is the controller's own link.
    controller_ip = cfg.mgmt.host(4, cfg.controller_host_index)
    if not driver.ports_of(CONTROLLER_DEVICE):
        driver.create_port(
            stable_id(cfg.mgmt.name),
            None,
            None,
            CONTROLLER_DEVICE,
            OWNER_CONTROLLER,
            [(stable_id(f"{cfg.mgmt.name}-v4"), controller_ip)],
        )
    plumbing.add_veth(None, HOST_MGMT_IF, TOR_NS, "ctl0", peer_master=cfg.mgmt.bridge)
    plumbing.add_address(None, HOST_MGMT_IF, f"{controller_ip}/{cfg.mgmt.v4.prefixlen}")

    _start_frr(cfg)


def _start_frr(cfg: LabConfig) -> None:
    for d in (FRR_CONF_DIR, FRR_RUN_DIR):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "frr", "frr")
    (FRR_CONF_DIR / "frr.conf").write_text(frr_config(cfg))
    (FRR_CONF_DIR / "vtysh.conf").write_text("")
    (FRR_CONF_DIR / "daemons").write_text("")
    # zebra first, as frrinit does: a bgpd that comes up before zebra listens retries its
    # connection later, and BGP sessions established meanwhile never get their BFD sessions
    # (FRR 8.4 does not retry the BFD registration).
    for daemon in FRR_DAEMONS:
        proc = _frr_process(daemon)
        if not _pidfile_alive(proc.pid_path):
            proc.start()
        if daemon == "zebra":
            _wait_for([FRR_RUN_DIR / "zserv.api", FRR_RUN_DIR / "zebra.vty"], timeout=15)
    _wait_for([FRR_RUN_DIR / f"{d}.vty" for d in FRR_DAEMONS], timeout=15)
    vtysh(["-b"])
    _wait_for_zebra_clients({"bgp", "bfd"}, timeout=15)


def crash_router() -> None:
    """The ToR's FRR daemons killed (SIGKILL, their process groups), as in a router crash:
    their pid files, control sockets and routes stay behind."""
    for daemon in FRR_DAEMONS:
        proc = _frr_process(daemon)
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(proc.pid_path.read_text().split()[0])
            if pid_alive(pid):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
    for daemon in FRR_DAEMONS:
        proc = _frr_process(daemon)
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(proc.pid_path.read_text().split()[0])
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)


def start_router(cfg: LabConfig | None = None) -> None:
    """FRR started again on the ToR after a crash, with its configuration. What a killed FRR
    left in its run directory is removed first: with its old control sockets still there,
    ``vtysh -b`` ran before the new daemons listened and bgpd came up with no configuration
    (lab notes, trap 10)."""
    for leftover in FRR_RUN_DIR.glob("*") if FRR_RUN_DIR.exists() else []:
        if leftover.is_file() or leftover.is_socket():
            leftover.unlink(missing_ok=True)
    _start_frr(cfg or LabConfig())


def reject_next_hop(next_hop: str | None) -> None:
    """The ToR's inbound policy for the IPv4 amphorae refuses paths with this next hop (an
    operator's import filter), or accepts all again (None); applied at once (``clear ... soft
    in``: the ToR re-runs its policy over what it received)."""
    bgp = ["configure terminal", f"router bgp {LabConfig().tor_asn}", "address-family ipv4 unicast"]
    if next_hop is None:
        vtysh(_args([*bgp, "no neighbor AMPHORAE4 route-map AMPHORAE4-REJECT in"]))
        vtysh(_args(["configure terminal", "no route-map AMPHORAE4-REJECT",
                     "no ip prefix-list REJECT4"]))  # fmt: skip
    else:
        commands = [f"ip prefix-list REJECT4 seq 5 permit {next_hop}/32",
                    "route-map AMPHORAE4-REJECT deny 5",
                    "match ip next-hop prefix-list REJECT4", "exit",
                    "route-map AMPHORAE4-REJECT permit 10", "exit"]  # fmt: skip
        vtysh(_args(["configure terminal", *commands]))
        vtysh(_args([*bgp, "neighbor AMPHORAE4 route-map AMPHORAE4-REJECT in"]))
    vtysh(["-c", "clear bgp ipv4 unicast peer-group AMPHORAE4 soft in"])


def _args(commands: list[str]) -> list[str]:
    return [arg for command in commands for arg in ("-c", command)]


def _wait_for_zebra_clients(wanted: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    clients: set[str] = set()
    while time.monotonic() < deadline:
        out = vtysh(["-c", "show zebra client summary"])
        clients = {line.split()[0] for line in out.splitlines()[2:] if line.strip()}
        if wanted <= clients:
            return
        time.sleep(0.05)
    raise RuntimeError(f"FRR daemons not connected to zebra: have {sorted(clients)}")


def _pidfile_alive(path: Path) -> bool:
    try:
        return pid_alive(int(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return False


def vtysh(args: list[str], timeout: float = 15) -> str:
    result = subprocess.run(
        ["vtysh", "-N", TOR_NS, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"vtysh {' '.join(args)}: {result.stdout}{result.stderr}".strip())
    return result.stdout


def set_add_path_rx(version: int, enabled: bool) -> None:
    """Make the ToR take ADD-PATH from the amphorae of one family, or refuse it (a router
    without ADD-PATH, for the distributors' fallback); the sessions are reset to renegotiate."""
    group = f"AMPHORAE{version}"
    command = f"neighbor {group} disable-addpath-rx"
    vtysh(["-c", "configure terminal", "-c", f"router bgp {LabConfig().tor_asn}",
           "-c", f"address-family {_family(version)}",
           "-c", command if not enabled else f"no {command}"])  # fmt: skip
    vtysh(["-c", f"clear bgp {_family(version)} peer-group {group}"])


def vtysh_json(command: str) -> Any:
    return json.loads(vtysh(["-c", command]) or "{}")


@functools.cache
def _driver(url: str) -> networks.LabNetworks:
    return networks.LabNetworks(Database(url))


def network_driver(migrate: bool = False) -> networks.LabNetworks:
    """The lab's own networks on the configured database (this process's: the lab's records;
    a controller on the lab has a database of its own)."""
    url = config.load().database.url
    if migrate:
        upgrade(url)
    return _driver(url)


def _forget_networks() -> int:
    """Drop the lab's network records; never creates a database that is not there."""
    url = config.load().database.url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        return 0
    try:
        return network_driver().forget_all()
    except SQLAlchemyError:
        return 0  # no schema yet, or the database is down: nothing of ours to drop


def down() -> list[str]:
    """Remove everything the lab made; safe to run any number of times, even after a crash.

    Processes are found by the pid files we wrote and by membership of our own namespaces
    (only processes the lab started can live there).
    """
    removed: list[str] = []
    for pidfile in sorted(STATE_DIR.rglob("*.pid")) if STATE_DIR.exists() else []:
        if kill_from_pidfile(pidfile, marker=""):
            removed.append(f"process {pidfile.stem}")
    for ns in plumbing.list_namespaces(PREFIX):
        for pid in plumbing.namespace_pids(ns):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill_group(os.getpgid(pid), timeout=2)
                removed.append(f"process {pid} in {ns}")
    for ns in plumbing.list_namespaces(PREFIX):
        plumbing.delete_namespace(ns)
        removed.append(f"namespace {ns}")
    for ifname in plumbing.link_names(None):
        if ifname.startswith(PREFIX):
            plumbing.delete_link(None, ifname)
            removed.append(f"interface {ifname}")
    for d in (FRR_CONF_DIR, FRR_RUN_DIR, STATE_DIR):
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)
            removed.append(f"directory {d}")
    with contextlib.suppress(OSError):
        STATE_DIR.parent.rmdir()
    if records := _forget_networks():
        removed.append(f"{records} network records")
    return removed


def is_up() -> bool:
    return TOR_NS in plumbing.list_namespaces(PREFIX)


@dataclass(frozen=True)
class Session:
    peer: str
    state: str
    remote_as: int | None
    prefixes_received: int


def bgp_sessions() -> list[Session]:
    """BGP sessions on the ToR, as FRR sees them."""
    sessions: list[Session] = []
    data = vtysh_json("show bgp neighbors json")
    for peer, info in data.items():
        if not isinstance(info, dict) or "bgpState" not in info:
            continue
        received = 0
        for af in info.get("addressFamilyInfo", {}).values():
            received += int(af.get("acceptedPrefixCounter", 0))
        sessions.append(Session(peer, info["bgpState"], info.get("remoteAs"), received))
    return sorted(sessions, key=lambda s: (ipaddress.ip_address(s.peer).version, s.peer))


def _family(version: int) -> str:
    return "ipv4 unicast" if version == 4 else "ipv6 unicast"


def received_routes(peer: str) -> list[str]:
    """What an amphora session sent the ToR, before the ToR's inbound policy (its adj-RIB-in,
    kept by ``soft-reconfiguration inbound``): the speaker's own export, unfiltered by us."""
    version = ipaddress.ip_address(peer).version
    data = vtysh_json(f"show bgp {_family(version)} neighbors {peer} received-routes json")
    return sorted(data.get("receivedRoutes", {}), key=ipaddress.ip_network)


def bgp_routes(version: int) -> dict[str, list[str]]:
    """The ToR's BGP table (after its inbound policy): every prefix with its paths' peers."""
    data = vtysh_json(f"show bgp {_family(version)} json")
    return {
        prefix: sorted(str(p.get("peerId", "")) for p in paths)
        for prefix, paths in data.get("routes", {}).items()
    }


def kernel_bgp_nexthop_counts(version: int) -> dict[str, int]:
    """Every route zebra installed from BGP in the ToR's kernel FIB (any prefix), with its
    number of next hops: one dump, for many routes at once."""
    out = subprocess.run(
        ["ip", "-n", TOR_NS, "-j", f"-{version}", "route", "show", "proto", "bgp"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    routes = {}
    for route in json.loads(out or "[]"):
        dst = route.get("dst", "")
        if dst == "default":
            dst = "0.0.0.0/0" if version == 4 else "::/0"
        prefix = str(
            ipaddress.ip_network(dst if "/" in dst else f"{dst}/{32 if version == 4 else 128}")
        )
        routes[prefix] = len(route.get("nexthops", [])) or (1 if "gateway" in route else 0)
    return routes


def kernel_bgp_routes(version: int) -> list[str]:
    """Every route zebra installed from BGP in the ToR's kernel FIB (any prefix)."""
    return sorted(kernel_bgp_nexthop_counts(version), key=ipaddress.ip_network)


def bfd_peer(peer: str) -> dict[str, Any] | None:
    """The ToR's BFD session with peer, as FRR reports it (``remote-receive-interval``, ...)."""
    for entry in vtysh_json("show bfd peers json") or []:
        if str(entry.get("peer")) == peer:
            return dict(entry)
    return None


def bgp_uptime(peer: str) -> float | None:
    """Seconds since the ToR's session with peer was established; None while it is not."""
    info = vtysh_json(f"show bgp neighbors {peer} json").get(peer, {})
    if info.get("bgpState") != "Established":
        return None
    return float(info.get("bgpTimerUpMsec", 0)) / 1000


def bfd_peers() -> dict[str, str]:
    """BFD session status per peer address on the ToR (bfdd)."""
    return {str(p["peer"]): str(p["status"]) for p in vtysh_json("show bfd peers json") or []}


def fib_nexthops(prefix: str) -> list[str]:
    """Next hops of a route in the ToR's kernel FIB (what packets actually follow)."""
    net = ipaddress.ip_network(prefix)
    out = subprocess.run(
        ["ip", "-n", TOR_NS, "-j", f"-{net.version}", "route", "show", "exact", str(net)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    hops: list[str] = []
    for route in json.loads(out or "[]"):
        if "nexthops" in route:
            hops += [h["gateway"] for h in route["nexthops"] if "gateway" in h]
        elif "gateway" in route:
            hops.append(route["gateway"])
    return sorted(hops, key=ipaddress.ip_address)


def anycast_routes(cfg: LabConfig | None = None) -> dict[str, list[str]]:
    """Every route inside the anycast subnets with its FIB next hops."""
    cfg = cfg or LabConfig()
    routes: dict[str, list[str]] = {}
    for version in (4, 6):
        out = subprocess.run(
            ["ip", "-n", TOR_NS, "-j", f"-{version}", "route", "show", "proto", "bgp"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for route in json.loads(out or "[]"):
            dst = route.get("dst", "")
            if "/" not in dst:
                dst = f"{dst}/{32 if version == 4 else 128}"
            if ipaddress.ip_network(dst).subnet_of(cfg.anycast(version)):  # type: ignore[arg-type]
                routes[dst] = fib_nexthops(dst)
    return routes
