"""All of the lab's network plumbing: namespaces, bridges, veth pairs, addresses, routes, sysctls.

Kept in one module on purpose: the network driver (a later layer) wraps exactly these operations.
Every call is idempotent where it can be (create what is missing, delete what exists), so a
half-built lab can be rebuilt or torn down safely.
"""

from __future__ import annotations

import contextlib
import ipaddress
import subprocess

from pyroute2 import netns
from pyroute2.netlink.exceptions import NetlinkError

from l3dist.common.netlink import (
    add_address,
    addresses,
    delete_address,
    if_index,
    ns_ipr,
    set_sysctls,
)

__all__ = ["add_address", "addresses", "delete_address", "set_sysctls"]


def list_namespaces(prefix: str = "") -> list[str]:
    return sorted(n for n in netns.listnetns() if n.startswith(prefix))


def create_namespace(name: str, sysctls: dict[str, str] | None = None) -> None:
    """Create a namespace with lo up, no IPv6 DAD (addresses usable at once), and extra sysctls."""
    if name not in netns.listnetns():
        netns.create(name)
    base = {
        "net.ipv6.conf.all.accept_dad": "0",
        "net.ipv6.conf.default.accept_dad": "0",
        "net.ipv6.conf.all.dad_transmits": "0",
        "net.ipv6.conf.default.dad_transmits": "0",
    }
    base.update(sysctls or {})
    set_sysctls(name, base)
    with ns_ipr(name) as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def delete_namespace(name: str) -> None:
    if name in netns.listnetns():
        netns.remove(name)


def namespace_pids(name: str) -> list[int]:
    """PIDs of processes living in a namespace (they can only be processes the lab started)."""
    out = subprocess.run(
        ["ip", "netns", "pids", name], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def link_exists(ns: str | None, ifname: str) -> bool:
    with ns_ipr(ns) as ipr:
        return if_index(ipr, ifname) is not None


def add_bridge(ns: str, name: str, mac: str | None = None) -> None:
    """A Linux bridge; its MAC is pinned so it does not change as ports come and go."""
    with ns_ipr(ns) as ipr:
        if if_index(ipr, name) is None:
            kwargs: dict[str, object] = {"ifname": name, "kind": "bridge"}
            if mac:
                kwargs["address"] = mac
            ipr.link("add", **kwargs)
        idx = if_index(ipr, name)
        ipr.link("set", index=idx, state="up")


def add_veth(
    ns: str | None,
    ifname: str,
    peer_ns: str | None,
    peer_ifname: str,
    master: str | None = None,
    peer_master: str | None = None,
    mtu: int = 1500,
    mac: str | None = None,
    peer_mac: str | None = None,
) -> None:
    """A veth pair from ns:ifname to peer_ns:peer_ifname, optionally enslaved to bridges."""
    with ns_ipr(ns) as ipr:
        if if_index(ipr, ifname) is None:
            peer: dict[str, object] = {"ifname": peer_ifname}
            if peer_ns is not None:
                peer["net_ns_fd"] = peer_ns
            if peer_mac:
                peer["address"] = peer_mac
            kwargs: dict[str, object] = {"ifname": ifname, "kind": "veth", "peer": peer}
            if mac:
                kwargs["address"] = mac
            ipr.link("add", **kwargs)
        idx = if_index(ipr, ifname)
        ipr.link("set", index=idx, mtu=mtu)
        if master:
            ipr.link("set", index=idx, master=if_index(ipr, master))
        ipr.link("set", index=idx, state="up")
    with ns_ipr(peer_ns) as ipr:
        pidx = if_index(ipr, peer_ifname)
        if pidx is None:
            raise RuntimeError(f"veth peer {peer_ifname} missing in {peer_ns or 'host'}")
        ipr.link("set", index=pidx, mtu=mtu)
        if peer_master:
            ipr.link("set", index=pidx, master=if_index(ipr, peer_master))
        ipr.link("set", index=pidx, state="up")


def delete_link(ns: str | None, ifname: str) -> None:
    """Delete an interface if it exists (deleting one end of a veth removes both)."""
    if ns is not None and ns not in netns.listnetns():
        return
    with ns_ipr(ns) as ipr:
        idx = if_index(ipr, ifname)
        if idx is not None:
            with contextlib.suppress(NetlinkError):
                ipr.link("del", index=idx)


def forget_neighbor(ns: str | None, address: str, ifname: str | None = None) -> None:
    """Drop ns's neighbor (ARP/NDP) entries for address (on ifname only, if given): a machine
    that takes over an address is then resolved afresh, not sent to the MAC of the one that
    left (an entry stays REACHABLE for up to 45 s with nobody to confirm it)."""
    if ns is not None and ns not in netns.listnetns():
        return
    argv = [*(["ip", "-n", ns] if ns else ["ip"]), "neigh", "flush", "to", address]
    subprocess.run(argv + (["dev", ifname] if ifname else []), capture_output=True)


def add_default_route(ns: str, gateway: str) -> None:
    version = ipaddress.ip_address(gateway).version
    dst = "0.0.0.0/0" if version == 4 else "::/0"
    with ns_ipr(ns) as ipr:
        try:
            ipr.route("replace", dst=dst, gateway=gateway)
        except NetlinkError as exc:
            raise RuntimeError(f"default route via {gateway} in {ns}: {exc}") from exc


def link_names(ns: str | None) -> list[str]:
    with ns_ipr(ns) as ipr:
        return [str(link.get("IFLA_IFNAME")) for link in ipr.get_links()]


def link_mac(ns: str | None, ifname: str) -> str | None:
    with ns_ipr(ns) as ipr:
        idx = if_index(ipr, ifname)
        if idx is None:
            return None
        return str(ipr.get_links(idx)[0].get("IFLA_ADDRESS"))


def netns_exec_argv(ns: str | None, argv: list[str]) -> list[str]:
    """The argv that runs a command inside namespace ns."""
    return argv if ns is None else ["ip", "netns", "exec", ns, *argv]


def netns_enter_argv(ns: str, argv: list[str]) -> list[str]:
    """The argv that runs a command in namespace ns's network stack only, keeping the machine's
    mounts: a namespace it adds itself (``ip netns add``) is seen by everyone, as on a real
    host. (``ip netns exec`` gives the command a mount namespace of its own, a slave of the
    machine's, where such a namespace's bind mount stays private: outside, its file in
    /run/netns is empty and ``ip netns exec`` into it fails.)"""
    return ["nsenter", f"--net=/run/netns/{ns}", "--", *argv]
