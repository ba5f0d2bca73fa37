"""Small netlink helpers shared by the lab plumbing and the amphora agent (pyroute2)."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink.exceptions import NetlinkError

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
    iface = ipaddress.ip_interface(cidr)
    with ns_ipr(ns) as ipr:
        idx = if_index(ipr, ifname)
        if idx is None:
            raise RuntimeError(f"no interface {ifname} in {ns or 'host'}")
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
    iface = ipaddress.ip_interface(cidr)
    with ns_ipr(ns) as ipr:
        idx = if_index(ipr, ifname)
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
        idx = if_index(ipr, ifname)
        if idx is None:
            return []
        return [
            f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
            for a in ipr.get_addr(index=idx)
            if a.get("IFA_ADDRESS")
        ]
