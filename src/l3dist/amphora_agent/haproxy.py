"""HAProxy in the amphora-haproxy namespace.

For now it answers HTTP on port 80 of every local address (the VIP on loopback included) with the
amphora's id; real listeners and pools replace this later. It binds the wildcard address, so a VIP
plugged or unplugged later needs no HAProxy reload: the kernel decides what is local.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from l3dist.common.process import ManagedProcess

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class HaproxyService:
    def __init__(self, namespace: str | None, amphora_id: str, workdir: Path) -> None:
        self.namespace = namespace
        self.amphora_id = amphora_id
        self.workdir = workdir
        self.conf_path = workdir / "haproxy.cfg"
        self.socket_path = workdir / "haproxy.sock"
        argv = [HAPROXY, "-W", "-db", "-f", str(self.conf_path)]
        if namespace:
            argv = ["ip", "netns", "exec", namespace, *argv]
        self.process = ManagedProcess("haproxy", argv, workdir, marker=str(self.conf_path))

    def config(self) -> str:
        return f"""global
    maxconn 4096
    stats socket {self.socket_path} mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s

frontend vip_http
    bind :::80 v4v6
    http-request return status 200 content-type text/plain string "{self.amphora_id}\\n"
"""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.config())
        self.process.start()

    def stop(self) -> None:
        self.process.stop()
