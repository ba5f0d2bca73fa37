"""The amphora-haproxy namespace and the front-end interface on an amphora host.

On a host the agent makes these itself (nothing outside the host touches its kernel): the
namespace, and ``fe0`` inside it, a macvlan off the host's front-end interface with the MAC
the network driver gave the port (so the router's neighbour entry for a reused address never
points at a stale MAC). A macvlan keeps the host's own interface (and its address, if any)
where it is; several could share it, one per amphora.

A dedicated distributor's front end is plugged in the host's own namespace instead (``ns``
None): its BGP speaker runs there and watches the load-balancing amphorae on the front-end
subnet by single-hop BFD, which needs the subnet on one of its own interfaces.

Every function is idempotent and leaves nothing half-made: a failed plug removes its link.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

from l3dist.contracts.agent_api import FrontendPlug

NETNS_DIR = Path("/run/netns")


class FrontendError(RuntimeError):
    """The kernel refused (iproute2's message)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise FrontendError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def namespace_exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


def ensure_namespace(ns: str) -> bool:
    """The namespace with its loopback up; True when it was made now."""
    if namespace_exists(ns):
        return False
    _ip("netns", "add", ns)
    _ip("-n", ns, "link", "set", "lo", "up")
    return True


def delete_namespace(ns: str) -> None:
    """Remove the namespace and everything in it (its links, addresses, nftables tables);
    absent is fine. The caller stopped the processes it started there."""
    if namespace_exists(ns):
        _ip("netns", "delete", ns)


def _in(ns: str | None) -> list[str]:
    """iproute2's arguments for namespace ns (none: this one)."""
    return [] if ns is None else ["-n", ns]


def link_mac(ns: str | None, ifname: str) -> str | None:
    result = _ip(*_in(ns), "-o", "link", "show", "dev", ifname, check=False)
    if result.returncode != 0:
        return None
    words = result.stdout.split()
    return words[words.index("link/ether") + 1].lower() if "link/ether" in words else ""


def plug(ns: str | None, parent: str, ifname: str, port: FrontendPlug) -> bool:
    """fe0 in ns (None: this namespace) with the port's MAC, MTU, addresses and default routes
    (only in a namespace of its own: a distributor keeps its management default route); True
    when made now.

    A link already there with the same MAC is completed (addresses, routes) and kept; one with
    another MAC is a different port: refused (the caller unplugs first)."""
    if ns is not None:
        ensure_namespace(ns)
    mac = port.mac_address.lower()
    present = link_mac(ns, ifname)
    made = False
    if present is None:
        # Made under a temporary name in the host namespace (fe0 may exist there), then moved.
        temporary = "l3f" + mac.replace(":", "")[-10:]
        _ip("link", "add", temporary, "link", parent, "address", mac, "mtu", str(port.mtu),
            "type", "macvlan", "mode", "bridge")  # fmt: skip
        made = True
        try:
            if ns is not None:
                _ip("link", "set", temporary, "netns", ns)
            _ip(*_in(ns), "link", "set", temporary, "name", ifname)
        except FrontendError:
            _ip("link", "delete", temporary, check=False)
            if ns is not None:
                _ip("-n", ns, "link", "delete", temporary, check=False)
            raise
    elif present != mac:
        raise FrontendError(f"{ifname} in {ns or 'the host namespace'} has MAC {present}, not "
                            f"the port's {mac}")  # fmt: skip
    try:
        _ip(*_in(ns), "link", "set", ifname, "mtu", str(port.mtu), "up")
        for address in port.addresses:
            extra = ["nodad"] if address.version == 6 else []
            result = _ip(*_in(ns), "address", "add", str(address), "dev", ifname, *extra,
                         check=False)  # fmt: skip
            if result.returncode != 0 and not _address_exists(result.stderr):
                raise FrontendError(f"address {address}: {result.stderr.strip()}")
        for gateway in port.gateways if ns is not None else []:
            family = f"-{ipaddress.ip_address(gateway).version}"
            _ip(*_in(ns), family, "route", "replace", "default", "via", str(gateway),
                "dev", ifname)  # fmt: skip
    except FrontendError:
        if made:
            unplug(ns, ifname)
        raise
    return made


def _address_exists(stderr: str) -> bool:
    """`ip address add` of an address the link has: "File exists" from older kernels, "ipv4:
    Address already assigned." from Debian 12's (a resumed plug must be a no-op)."""
    return "File exists" in stderr or "already assigned" in stderr.lower()


def unplug(ns: str | None, ifname: str) -> None:
    if ns is None:
        _ip("link", "delete", ifname, check=False)
    elif namespace_exists(ns):
        _ip("-n", ns, "link", "delete", ifname, check=False)
