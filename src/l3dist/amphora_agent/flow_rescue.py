"""Flow rescue in the amphora (spec P2, resilient flow handling): when the fabric's ECMP group
changes, the router sends some established flows to an amphora that has no socket for them.
Instead of resetting them, the amphora copies such packets to its peers (the other amphorae of
the cluster, on the same front-end segment); the owner's conntrack knows the flow and its socket
takes the copy, the others drop theirs. Only nftables and conntrack, in the amphora-haproxy
namespace (the shared notes' measured mechanism):

- ``nf_conntrack_tcp_loose=0``: a mid-flow segment without a conntrack entry is ``invalid`` and
  never reaches TCP (no RST);
- for TCP to a VIP: our own flows (established) and new connections (a pure SYN) go on; a packet
  from a router MAC (an allow-list: never "everything but peers", which loops when a peer MAC is
  missing) is copied to every peer and dropped here; anything else (a peer's copy that is not
  ours) is dropped silently.

The rule set is replaced atomically (one ``nft -f`` transaction), so conntrack entries and the
flows they carry survive every membership change.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
from dataclasses import dataclass, field

TABLE = "l3dist_rescue"
FAMILIES = {4: "ip", 6: "ip6"}
# Named counters in the rules, and the packet totals the agent reports from them.
COUNTERS = ("to_all", "to_owner", "not_ours", "dead_owner", "owner_feedback", "owner_learned",
            "flows")  # fmt: skip
PACKET_KINDS = ("flows", "rescued", "copies", "not_ours", "dead_owner", "owner_feedback",
                "owner_learned")  # fmt: skip
# A moved flow counts once (``flows``) within this long of its last rescued packet.
MOVED_MS = 600_000
# Owner learning: an owner answers copies of a flow at most every FEEDBACK_MS; a learned owner
# is forgotten OWNER_MS after its last answer (then the flow is copied to every peer again).
FEEDBACK_MS = 2000
OWNER_MS = 10000
# The dead-owner rule. A client whose segment is not acknowledged sends it again: a tail-loss
# probe after ~0.2 s, then retransmissions 0.4, 0.8, 1.6 s after it (Linux, LAN). The segment
# seen here again 350 ms or more after its first sighting means no peer took it (its owner is
# dead): that sighting reaches TCP, whose RST ends the flow about a second after the fabric
# moved it here. A live owner ACKs the first copy, so its client does not send it again; one
# lost ACK is not enough to reset a LAN client (its probe comes sooner), but it is for a client
# whose retransmission timeout is 350 ms or more (docs/design.md: the trade-off).
DEAD_OWNER_AFTER_MS = 350
SEEN_MS = 4000
SIGHTINGS_MAX = 65536
# Turning rescue on where connections are open: how long conntrack picks up the active flows
# (a flow sending nothing meanwhile is not picked up; its next segment gets a reset).
PICKUP_SECONDS = 3.0
# Conntrack keeps a closed TCP flow this long (the kernel's default, 120 s, fills the table
# under a high connection rate).
TIME_WAIT_SECONDS = 30


@dataclass(frozen=True)
class RescueConfig:
    peers: list[str]  # the other amphorae's front-end addresses (both IP versions)
    router_macs: list[str] = field(default_factory=list)  # besides the gateways' (learned)


def ruleset(
    vips: list[str],
    peers: list[str],
    router_macs: list[str],
    device: str,
    pickup: bool = False,
    peer_macs: dict[str, str] | None = None,
) -> str:
    """The nft script that replaces both rescue tables at once (a table without VIPs of its IP
    version is removed).

    peer_macs (peer address -> its MAC, for the peers resolved on the front end) turns on owner
    learning: the owner of a flow tells the peer that copied it so (the copy sent back with TTL
    255, at most every FEEDBACK_MS per flow) and that peer then copies the flow to its owner only.

    pickup: the rules for an amphora that already has connections when rescue is turned on.
    Conntrack has not seen their handshakes; for PICKUP_SECONDS (with tcp_loose still on) a
    router's packet of an unknown flow is taken as ours, as without rescue, so conntrack picks
    up every active flow; peers' copies are already dropped (peers may copy to us at once)."""
    lines: list[str] = []
    for version, family in FAMILIES.items():
        lines += [f"table {family} {TABLE}", f"delete table {family} {TABLE}"]
        family_vips = sorted(v for v in vips if ipaddress.ip_address(v).version == version)
        if family_vips:
            lines += _table(version, family_vips, peers, router_macs, device, pickup, peer_macs)
    return "\n".join(lines) + "\n"


def _table(
    version: int,
    vips: list[str],
    peers: list[str],
    router_macs: list[str],
    device: str,
    pickup: bool,
    peer_macs: dict[str, str] | None,
) -> list[str]:
    family, addr = FAMILIES[version], ("ip" if version == 4 else "ip6")
    addr_type = "ipv4_addr" if version == 4 else "ipv6_addr"
    ttl = "ip ttl" if version == 4 else "ip6 hoplimit"
    family_peers = sorted(
        (p for p in peers if ipaddress.ip_address(p).version == version), key=ipaddress.ip_address
    )
    known = [(p, (peer_macs or {})[p]) for p in family_peers if p in (peer_macs or {})]
    flow = f"{addr} saddr . tcp sport . {addr} daddr . tcp dport"
    # The segment's sequence number goes through the packet mark: nft 1.0.6 cannot list a set
    # keyed on "tcp sequence" (typeof gives a zero-length integer) once it holds two elements,
    # and then no command on the table works, replacing it included.
    segment = f"{flow} . meta mark"
    data = "tcp flags & psh == psh"

    def dynamic_set(name: str, key: str, timeout_ms: int) -> str:
        return (
            f"  set {name} {{ typeof {key}; flags dynamic,timeout; timeout {timeout_ms}ms; "
            f"size {SIGHTINGS_MAX}; }}"
        )

    def elements(items: list[str]) -> str:
        return f" elements = {{ {', '.join(items)} }}" if items else ""

    lines = [
        f"table {family} {TABLE} {{",
        f"  set vips {{ type {addr_type};{elements(vips)} }}",
        f"  set routers {{ type ether_addr;{elements(sorted(router_macs))} }}",
        *(f"  counter {name} {{ }}" for name in COUNTERS),
    ]
    rules = [f"{addr} daddr != @vips accept", "meta l4proto != tcp accept"]
    if known:
        lines += [
            f"  set peer_macs {{ type ether_addr;{elements(sorted({m for _, m in known}))} }}",
            f"  map peer_ips {{ type ether_addr : {addr_type};"
            f"{elements([f'{m} : {p}' for p, m in known])} }}",
            dynamic_set("fed_back", flow, FEEDBACK_MS),
            *(dynamic_set(f"owned_by_{i}", flow, OWNER_MS) for i in range(len(known))),
        ]
        # A peer's copy of our own flow: tell it we own the flow (now and then, per flow). The
        # answer is marked by its TTL: sent with 255, it arrives with 254 (dup decrements it);
        # no copy of a client's packet can (the router and the copying peer decrement it).
        rules.append(
            f"ether saddr @peer_macs ct state established {flow} != @fed_back "
            f'add @fed_back {{ {flow} }} {ttl} set 255 counter name "owner_feedback" '
            f'dup to ether saddr map @peer_ips device "{device}" accept'
        )
    rules += [
        "ct state established,related accept",
        "tcp flags & (fin|syn|rst|ack) == syn ct state new accept",
    ]
    if pickup:
        return [
            *lines,
            "  chain prerouting {",
            "    type filter hook prerouting priority -150; policy accept;",
            *(f"    {r}" for r in rules),
            '    ether saddr != @routers counter name "not_ours" drop',
            "    accept",
            "  }",
            "}",
        ]
    lines += [
        dynamic_set("seen", segment, SEEN_MS),
        dynamic_set("recent", segment, DEAD_OWNER_AFTER_MS),
        dynamic_set("moved", flow, MOVED_MS),
    ]
    # A peer's answer to our copy: it owns the flow.
    rules += [
        f"ether saddr {mac} {ttl} 254 update @owned_by_{i} {{ {flow} }} "
        'counter name "owner_learned" drop'
        for i, (_, mac) in enumerate(known)
    ]
    rules += [
        'ether saddr != @routers counter name "not_ours" drop',
        # From a router and not ours: the fabric moved the flow here. A data segment seen again
        # long after its first sighting (its client got no ACK from any peer through
        # retransmissions: the owner is dead) reaches TCP, whose RST ends the flow instead of
        # leaving the client hanging.
        f"{data} meta mark set tcp sequence",
        f'{data} {segment} @seen {segment} != @recent counter name "dead_owner" accept',
        f"{data} {segment} != @seen add @recent {{ {segment} }}",
        f"{data} add @seen {{ {segment} }}",
        f'{flow} != @moved add @moved {{ {flow} }} counter name "flows"',
        # Copied to its owner when known, else to every peer; dropped here.
        *(
            f'{flow} @owned_by_{i} counter name "to_owner" dup to {peer} device "{device}" drop'
            for i, (peer, _) in enumerate(known)
        ),
        " ".join(
            [
                'counter name "to_all"',
                *(f'dup to {p} device "{device}"' for p in family_peers),
                "drop",
            ]
        ),
    ]
    return [
        *lines,
        "  chain prerouting {",
        "    type filter hook prerouting priority -150; policy accept;",
        *(f"    {r}" for r in rules),
        "  }",
        "}",
    ]


def install(namespace: str, script: str, pickup: bool = False) -> None:
    """Apply a rescue rule set in the namespace, then stop TCP from resetting unknown flows
    (after the pickup phase: until then conntrack must still pick up mid-flow packets)."""
    _nft(namespace, script)
    _sysctl(namespace, "net.netfilter.nf_conntrack_tcp_timeout_time_wait", TIME_WAIT_SECONDS)
    _tcp_loose(namespace, enabled=pickup)


def conntrack(namespace: str, connection_limit: int, resize: bool = False) -> dict[str, int]:
    """Conntrack for the connection limit: each client connection and its member connection
    take an entry, closed ones stay for TIME_WAIT_SECONDS; twice that is needed. With resize,
    a smaller table is raised where the agent may (the kernel's own namespace: a real amphora;
    not a lab namespace); the answer says what is in force either way."""
    needed = 4 * connection_limit
    limit = _sysctl_value(namespace, "net.netfilter.nf_conntrack_max")
    if resize and limit < needed:
        with contextlib.suppress(subprocess.CalledProcessError):
            _sysctl(namespace, "net.netfilter.nf_conntrack_max", needed)
            limit = _sysctl_value(namespace, "net.netfilter.nf_conntrack_max")
    return {
        "max": limit,
        "needed": needed,
        "count": _sysctl_value(namespace, "net.netfilter.nf_conntrack_count"),
        "time_wait_seconds": _sysctl_value(
            namespace, "net.netfilter.nf_conntrack_tcp_timeout_time_wait"
        ),
    }


def _sysctl(namespace: str, name: str, value: int) -> None:
    subprocess.run(
        ["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", f"{name}={value}"],
        check=True,
        capture_output=True,
    )


def _sysctl_value(namespace: str, name: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "sysctl", "-n", name],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return int(out) if out.isdigit() else 0


def remove(namespace: str) -> None:
    """Rescue off: tables gone, TCP resets unknown flows again."""
    _nft(
        namespace,
        "".join(f"table {f} {TABLE}\ndelete table {f} {TABLE}\n" for f in FAMILIES.values()),
    )
    _tcp_loose(namespace, enabled=True)


def _nft(namespace: str, script: str) -> None:
    """One nft transaction in the namespace: all of it applies, or none."""
    subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "-f", "-"],
        input=script,
        text=True,
        check=True,
        capture_output=True,
    )


def _tcp_loose(namespace: str, enabled: bool) -> None:
    _sysctl(namespace, "net.netfilter.nf_conntrack_tcp_loose", 1 if enabled else 0)


def counters(namespace: str, peers: list[str]) -> dict[str, int]:
    """Counts so far under the rules in force (made with peers), over both IP versions:
    ``flows`` (flows the fabric moved here, rescued) and packets: ``rescued`` (from a router,
    not ours: copied), ``copies`` (sent to peers: one to a learned
    owner, else one to every peer), ``not_ours`` (a peer's copy of a flow we do not own,
    dropped), ``dead_owner`` (a segment retransmitted long after its first sighting, let
    through so TCP resets the flow), ``owner_feedback`` (told a peer we own a flow it copied)
    and ``owner_learned`` (a peer told us it owns a flow we copy)."""
    totals = dict.fromkeys(PACKET_KINDS, 0)
    for version, family in FAMILIES.items():
        out = subprocess.run(
            ["ip", "netns", "exec", namespace, "nft", "-j", "list", "counters", "table", family,
             TABLE],
            capture_output=True,
            text=True,
            check=False,
        ).stdout  # fmt: skip
        family_peers = sum(1 for p in peers if ipaddress.ip_address(p).version == version)
        found = {
            item["counter"]["name"]: int(item["counter"].get("packets", 0))
            for item in json.loads(out or "{}").get("nftables", [])
            if "counter" in item
        }
        to_all, to_owner = found.get("to_all", 0), found.get("to_owner", 0)
        totals["rescued"] += to_all + to_owner
        totals["copies"] += to_all * family_peers + to_owner
        for kind in ("flows", "not_ours", "dead_owner", "owner_feedback", "owner_learned"):
            totals[kind] += found.get(kind, 0)
    return totals


def neighbours(namespace: str, device: str) -> dict[str, str]:
    """The front end's resolved neighbours: address -> link-layer address."""
    out = subprocess.run(
        ["ip", "-j", "-n", namespace, "neigh", "show", "dev", device],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {n["dst"]: n["lladdr"].lower() for n in json.loads(out or "[]") if n.get("lladdr")}


def gateway_macs(namespace: str, device: str, gateways: list[str]) -> list[str]:
    """The link-layer addresses of the front-end gateways (the routers), from the neighbour
    table (the agent pings them at start, so they are known)."""
    known = neighbours(namespace, device)
    wanted = [str(ipaddress.ip_address(g)) for g in gateways]
    return sorted({known[g] for g in wanted if g in known})
