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

import ipaddress
import json
import subprocess
from dataclasses import dataclass, field

TABLE = "l3dist_rescue"
FAMILIES = {4: "ip", 6: "ip6"}
COUNTERS = ("rescued", "not_ours", "dead_owner")  # named counters in the rules
PACKET_KINDS = ("rescued", "copies", "not_ours", "dead_owner")  # what the agent reports
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


@dataclass(frozen=True)
class RescueConfig:
    peers: list[str]  # the other amphorae's front-end addresses (both IP versions)
    router_macs: list[str] = field(default_factory=list)  # empty: learned from the gateways


def ruleset(
    vips: list[str], peers: list[str], router_macs: list[str], device: str, pickup: bool = False
) -> str:
    """The nft script that replaces both rescue tables at once (a table without VIPs of its IP
    version is removed).

    pickup: the rules for an amphora that already has connections when rescue is turned on.
    Conntrack has not seen their handshakes; for PICKUP_SECONDS (with tcp_loose still on) a
    router's packet of an unknown flow is taken as ours, as without rescue, so conntrack picks
    up every active flow; peers' copies are already dropped (peers may copy to us at once)."""
    lines: list[str] = []
    for version, family in FAMILIES.items():
        lines += [f"table {family} {TABLE}", f"delete table {family} {TABLE}"]
        family_vips = sorted(v for v in vips if ipaddress.ip_address(v).version == version)
        if not family_vips:
            continue
        family_peers = sorted(
            (p for p in peers if ipaddress.ip_address(p).version == version),
            key=ipaddress.ip_address,
        )
        addr = "ip" if version == 4 else "ip6"
        addr_type = "ipv4_addr" if version == 4 else "ipv6_addr"
        copies = " ".join(f'dup to {p} device "{device}"' for p in family_peers)
        # The segment's sequence number goes through the packet mark: nft 1.0.6 cannot list a
        # set keyed on "tcp sequence" (typeof gives a zero-length integer) once it holds two
        # elements, and then no command on the table works, replacing it included.
        segment = f"{addr} saddr . tcp sport . {addr} daddr . tcp dport . meta mark"
        data = "tcp flags & psh == psh"
        lines += [
            f"table {family} {TABLE} {{",
            f"  set vips {{ type {addr_type}; elements = {{ {', '.join(family_vips)} }} }}",
            "  set routers { type ether_addr;"
            + (f" elements = {{ {', '.join(sorted(router_macs))} }}" if router_macs else "")
            + " }",
            *(
                f"  set {name} {{ typeof {segment}; flags dynamic,timeout; "
                f"timeout {timeout_ms}ms; size {SIGHTINGS_MAX}; }}"
                for name, timeout_ms in (("seen", SEEN_MS), ("recent", DEAD_OWNER_AFTER_MS))
            ),
            *(f"  counter {name} {{ }}" for name in COUNTERS),
            "  chain prerouting {",
            "    type filter hook prerouting priority -150; policy accept;",
            f"    {addr} daddr != @vips accept",
            "    meta l4proto != tcp accept",
            "    ct state established,related accept",
            "    tcp flags & (fin|syn|rst|ack) == syn ct state new accept",
            '    ether saddr != @routers counter name "not_ours" drop',
            *(
                ["    accept"]
                if pickup
                else [
                    # From a router and not ours: the fabric moved the flow here. A data segment
                    # seen again long after its first sighting (its client got no ACK from any
                    # peer through retransmissions: the owner is dead) reaches TCP, whose RST
                    # ends the flow instead of leaving the client hanging.
                    f"    {data} meta mark set tcp sequence",
                    f"    {data} {segment} @seen {segment} != @recent "
                    'counter name "dead_owner" accept',
                    f"    {data} {segment} != @seen add @recent {{ {segment} }}",
                    f"    {data} add @seen {{ {segment} }}",
                    "    " + " ".join(filter(None, ['counter name "rescued"', copies, "drop"])),
                ]
            ),
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def install(namespace: str, script: str, pickup: bool = False) -> None:
    """Apply a rescue rule set in the namespace, then stop TCP from resetting unknown flows
    (after the pickup phase: until then conntrack must still pick up mid-flow packets)."""
    _nft(namespace, script)
    _tcp_loose(namespace, enabled=pickup)


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
    subprocess.run(
        ["ip", "netns", "exec", namespace, "sysctl", "-q", "-w",
         f"net.netfilter.nf_conntrack_tcp_loose={1 if enabled else 0}"],
        check=True,
        capture_output=True,
    )  # fmt: skip


def counters(namespace: str, peers: list[str]) -> dict[str, int]:
    """Packets so far under the rules in force (made with peers), over both IP versions:
    ``rescued`` (from a router, not ours: copied to the peers), ``copies`` (sent to peers),
    ``not_ours`` (a peer's copy of a flow we do not own, dropped) and ``dead_owner`` (a segment
    retransmitted long after its first sighting, let through so TCP resets the flow)."""
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
        for item in json.loads(out or "{}").get("nftables", []):
            counter = item.get("counter")
            if counter and counter.get("name") in COUNTERS:
                packets = int(counter.get("packets", 0))
                totals[counter["name"]] += packets
                if counter["name"] == "rescued":
                    totals["copies"] += packets * family_peers
    return totals


def gateway_macs(namespace: str, device: str, gateways: list[str]) -> list[str]:
    """The link-layer addresses of the front-end gateways (the routers), from the neighbour
    table (the agent pings them at start, so they are known)."""
    out = subprocess.run(
        ["ip", "-j", "-n", namespace, "neigh", "show", "dev", device],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    wanted = {str(ipaddress.ip_address(g)) for g in gateways}
    return sorted(
        {n["lladdr"] for n in json.loads(out or "[]") if n.get("dst") in wanted and "lladdr" in n}
    )
