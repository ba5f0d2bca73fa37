"""Lab member servers: each is a namespace on the member network (its port made by the lab
network driver) running a small HTTP server that answers with the member's name, so traffic
reports can say which member served a request. The ToR routes between the member network and
the amphorae's front end."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from l3dist.common.process import ManagedProcess
from l3dist.network.catalog import stable_id
from l3dist_lab import fabric, plumbing
from l3dist_lab.config import MEMBER_NET, STATE_DIR

MEMBERS_DIR = STATE_DIR / "members"
OWNER_MEMBER = "compute:l3dist-member"


@dataclass(frozen=True)
class LabMember:
    name: str
    namespace: str
    ip4: str
    ip6: str
    port: int

    @property
    def dir(self) -> Path:
        return MEMBERS_DIR / self.name

    def process(self) -> ManagedProcess:
        argv = plumbing.netns_exec_argv(
            self.namespace,
            [sys.executable, "-m", "l3dist_lab.member_server", self.name, str(self.port)],
        )
        return ManagedProcess("http", argv, self.dir, marker=f"member_server {self.name}")


def add(name: str, port: int = 80) -> LabMember:
    """A member server; its addresses come from the member network's IPAM."""
    if not name.replace("-", "").isalnum() or len(name) > 20:
        raise ValueError("member name: letters, digits and '-', at most 20 characters")
    if (MEMBERS_DIR / name / "member.json").exists():
        raise ValueError(f"member {name} exists")
    namespace = f"l3d-mem-{name}"
    driver = fabric.network_driver()
    plumbing.create_namespace(namespace)
    try:
        port_obj = driver.create_port(
            stable_id(MEMBER_NET),
            namespace,
            "eth0",
            f"member-{name}",
            OWNER_MEMBER,
            default_routes=True,
        )
        member = LabMember(name, namespace, port_obj.address(4), port_obj.address(6), port)
        member.dir.mkdir(parents=True, exist_ok=True)
        (member.dir / "member.json").write_text(json.dumps(member.__dict__))
        member.process().start()
    except BaseException:
        remove(name)
        raise
    return member


def list_members() -> list[LabMember]:
    if not MEMBERS_DIR.exists():
        return []
    return [
        LabMember(**json.loads(p.read_text())) for p in sorted(MEMBERS_DIR.glob("*/member.json"))
    ]


def remove(name: str) -> None:
    """Remove a member server (process, port, namespace); safe to repeat."""
    namespace = f"l3d-mem-{name}"
    meta = MEMBERS_DIR / name / "member.json"
    if meta.exists():
        LabMember(**json.loads(meta.read_text())).process().stop()
    driver = fabric.network_driver()
    for port in driver.ports_of(f"member-{name}"):
        driver.delete_port(port.id)
    plumbing.delete_namespace(namespace)
    shutil.rmtree(MEMBERS_DIR / name, ignore_errors=True)
