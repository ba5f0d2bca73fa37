"""Client traffic through the VIP, from the lab's client namespace (it reaches the VIP only via the
ToR, so every connection follows the ToR's ECMP route).

``run_clients`` runs on the host and starts ``python -m l3dist.lab.traffic`` inside the client
namespace; each connection is a fresh TCP connection (new source port, so a new ECMP hash) that
sends one HTTP request and records which amphora answered.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from l3dist.lab.config import CLIENT_NS


def one_request(vip: str, port: int, timeout: float) -> str:
    family = socket.AF_INET6 if ipaddress.ip_address(vip).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((vip, port))
        host = f"[{vip}]" if family == socket.AF_INET6 else vip
        sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    response = b"".join(chunks).decode(errors="replace")
    head, _, body = response.partition("\r\n\r\n")
    if not head.startswith("HTTP/1.") or " 200 " not in head.split("\r\n")[0]:
        raise ValueError(f"unexpected response: {head.splitlines()[:1]}")
    return body.strip()


def probe(
    vip: str, count: int, port: int = 80, timeout: float = 2.0, workers: int = 8
) -> dict[str, Any]:
    """Open count connections to vip:port; count answers per amphora and failures."""
    answers: Counter[str] = Counter()
    errors: Counter[str] = Counter()

    def attempt(_: int) -> None:
        try:
            answers[one_request(vip, port, timeout)] += 1
        except (OSError, ValueError) as exc:
            errors[type(exc).__name__] += 1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(attempt, range(count)))
    return {
        "vip": vip,
        "connections": count,
        "per_amphora": dict(sorted(answers.items())),
        "failures": sum(errors.values()),
        "errors": dict(errors),
    }


def run_clients(vip: str, count: int, port: int = 80, timeout: float = 2.0) -> dict[str, Any]:
    """Run probe() inside the client namespace and return its result."""
    argv = [
        "ip", "netns", "exec", CLIENT_NS, sys.executable, "-m", "l3dist.lab.traffic",
        "--vip", vip, "--count", str(count), "--port", str(port), "--timeout", str(timeout),
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600).stdout
    return dict(json.loads(out))


def main() -> None:
    parser = argparse.ArgumentParser(description="open TCP connections to a VIP")
    parser.add_argument("--vip", required=True)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    print(json.dumps(probe(args.vip, args.count, args.port, args.timeout)))


if __name__ == "__main__":
    main()
