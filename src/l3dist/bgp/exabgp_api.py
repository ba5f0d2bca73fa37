"""ExaBGP API helper: the process ExaBGP runs to receive our commands and report session state.

ExaBGP reads commands from this helper's stdout and writes JSON events to its stdin. The agent
writes commands into a FIFO that this helper forwards; session state changes from ExaBGP are kept
in a small JSON status file the agent reads. Usage: ``python -m l3dist.bgp.exabgp_api FIFO STATUS``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from l3dist.common.files import write_atomic

STATES = {"up": "Established", "connected": "OpenSent", "down": "Idle"}


def forward_commands(fifo: Path) -> None:
    """Copy command lines from the FIFO to ExaBGP; O_RDWR so the FIFO never reports EOF."""
    fd = os.open(fifo, os.O_RDWR)
    with os.fdopen(fd, "r", buffering=1) as commands:
        for line in commands:
            sys.stdout.write(line)
            sys.stdout.flush()


def write_status(path: Path, peers: dict[str, dict[str, object]]) -> None:
    write_atomic(path, json.dumps(peers), mode=0o644)


def main() -> None:
    fifo, status_path = Path(sys.argv[1]), Path(sys.argv[2])
    threading.Thread(target=forward_commands, args=(fifo,), daemon=True).start()
    peers: dict[str, dict[str, object]] = {}
    write_status(status_path, peers)
    for line in sys.stdin:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("type")
        neighbor = event.get("neighbor", {})
        peer_ip = neighbor.get("address", {}).get("peer")
        if not peer_ip or kind not in ("state", "negotiated"):
            continue
        previous = peers.get(peer_ip, {})
        if kind == "negotiated":
            # The families this session sends ADD-PATH for ("ipv4 unicast"): the driver sends
            # every path to it only then.
            negotiated = neighbor.get("negotiated", {})
            sends = negotiated.get("add_path", {}).get("send", [])
            peers[peer_ip] = {**previous, "add_path_send": list(sends)}
        else:
            state = neighbor.get("state", "")
            peers[peer_ip] = {
                "state": STATES.get(state, state),
                "since": time.time(),
                "last_error": neighbor.get("reason") or previous.get("last_error"),
                # A session that went down renegotiates: what it sent for is forgotten.
                "add_path_send": previous.get("add_path_send", []) if state == "up" else [],
            }
        write_status(status_path, peers)


if __name__ == "__main__":
    main()
