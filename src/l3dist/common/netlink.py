"""Small netlink helpers shared by the lab plumbing and the amphora agent (pyroute2)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink.exceptions import NetlinkError

T = TypeVar("T")
IFA_F_NODAD = 0x02
ENOENT, EEXIST, ENODEV, EADDRNOTAVAIL = 2, 17, 19, 99


@contextlib.contextmanager
def ns_ipr(ns: str | None) -> Iterator[IPRoute]:
    """A netlink socket in namespace ns (None: the host namespace)."""
    ipr = IPRoute() if ns is None else NetNS(ns)
    try:
        yield ipr
    finally:
        ipr.close()


def if_index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def add_address(ns: str | None, ifname: str, cidr: str) -> None:
    """Add an address (no DAD for IPv6, so it is usable at once); existing is fine."""
    with ns_ipr(ns) as ipr:
        _add_address(ipr, ifname, cidr)


def _add_address(ipr: IPRoute, ifname: str, cidr: str, idx: int | None = None) -> None:
    iface = ipaddress.ip_interface(cidr)
    idx = idx if idx is not None else if_index(ipr, ifname)
    if idx is None:
        raise RuntimeError(f"no interface {ifname}")
    kwargs: dict[str, object] = {
        "index": idx,
        "address": str(iface.ip),
        "prefixlen": iface.network.prefixlen,
    }
    if iface.version == 6:
        kwargs["flags"] = IFA_F_NODAD
    try:
        ipr.addr("add", **kwargs)
    except NetlinkError as exc:
        if exc.code != EEXIST:
            raise


def delete_address(ns: str | None, ifname: str, cidr: str) -> bool:
    """Remove an address; False when it was not there."""
    with ns_ipr(ns) as ipr:
        return _delete_address(ipr, ifname, cidr)


def _delete_address(ipr: IPRoute, ifname: str, cidr: str, idx: int | None = None) -> bool:
    iface = ipaddress.ip_interface(cidr)
    idx = idx if idx is not None else if_index(ipr, ifname)
    if idx is None:
        return False
    try:
        ipr.addr("del", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as exc:
        if exc.code in (ENOENT, EADDRNOTAVAIL, ENODEV):
            return False
        raise
    return True


def addresses(ns: str | None, ifname: str) -> list[str]:
    """Addresses on an interface as 'ip/prefixlen' strings."""
    with ns_ipr(ns) as ipr:
        return _addresses(ipr, ifname)


def _addresses(ipr: IPRoute, ifname: str, idx: int | None = None) -> list[str]:
    idx = idx if idx is not None else if_index(ipr, ifname)
    if idx is None:
        return []
    return [
        f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
        for a in ipr.get_addr(index=idx)
        if a.get("IFA_ADDRESS")
    ]


# A VIP on loopback in the amphora-haproxy namespace: never answer or announce ARP for it on the
# front-end port (the fabric routes the VIP to the front-end IP).
VIP_ON_LOOPBACK_SYSCTLS = {
    "net.ipv4.conf.all.arp_ignore": "1",
    "net.ipv4.conf.all.arp_announce": "2",
    # HAProxy binds the VIP even while it is off the loopback (between unregister and plug).
    "net.ipv4.ip_nonlocal_bind": "1",
    "net.ipv6.ip_nonlocal_bind": "1",
}


def set_sysctls(ns: str, values: dict[str, str]) -> None:
    """Set sysctls inside a namespace (net.* sysctls are per namespace)."""
    args = [f"{k}={v}" for k, v in values.items()]
    subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *args],
        check=True,
        capture_output=True,
    )


def default_gateways(ns: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The gateways of a namespace's IPv4 and IPv6 default routes."""
    gateways: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for version in (4, 6):
        out = subprocess.run(
            ["ip", "-n", ns, "-j", f"-{version}", "route", "show", "default"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for route in json.loads(out or "[]"):
            if "gateway" in route:
                gateways.append(ipaddress.ip_address(route["gateway"]))
    return gateways


class NamespaceNetlink:
    """A persistent netlink socket into one namespace, used from one worker thread.

    Opening a namespace socket costs ~12 ms with pyroute2 0.9 and its synchronous sockets belong
    to the thread that made them, so one thread owns the socket and runs every call.
    """

    def __init__(self, ns: str | None) -> None:
        self.ns = ns
        self._ipr: IPRoute | None = None
        self._indexes: dict[str, int] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"netlink-{ns}")

    def _socket(self) -> IPRoute:
        if self._ipr is None:
            # strict_check: the kernel filters dumps (by interface), not Python.
            self._ipr = IPRoute(netns=self.ns, strict_check=True)
        return self._ipr

    def call(self, fn: Callable[[IPRoute], T]) -> T:
        return self._pool.submit(lambda: fn(self._socket())).result()

    def addresses(self, ifname: str) -> list[str]:
        return self.call(lambda ipr: _addresses(ipr, ifname, self._index(ipr, ifname)))

    def add_address(self, ifname: str, cidr: str) -> None:
        self.call(lambda ipr: _add_address(ipr, ifname, cidr, self._index(ipr, ifname)))

    def delete_address(self, ifname: str, cidr: str) -> bool:
        return self.call(lambda ipr: _delete_address(ipr, ifname, cidr, self._index(ipr, ifname)))

    def _index(self, ipr: IPRoute, ifname: str) -> int | None:
        """Interface index; lo's is cached (it is never recreated, unlike a plugged port)."""
        idx = self._indexes.get(ifname)
        if idx is None:
            idx = if_index(ipr, ifname)
            if idx is not None and ifname == "lo":
                self._indexes[ifname] = idx
        return idx

    def has_link(self, ifname: str) -> bool:
        return self.call(lambda ipr: if_index(ipr, ifname) is not None)

    def close(self) -> None:
        def _close() -> None:
            if self._ipr is not None:
                self._ipr.close()
                self._ipr = None

        self._pool.submit(_close).result()
        self._pool.shutdown()
