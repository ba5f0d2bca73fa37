"""``l3dist lab ...`` and ``l3dist demo``: the simulated datacenter from the shell, added to the
l3dist command line through the ``l3dist.cli_plugins`` entry point."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from l3dist.cli import console, fail, print_json

lab_app = typer.Typer(
    help="The embedded lab: a ToR (FRR), amphorae and a client, on this host.", no_args_is_help=True
)
amphora_app = typer.Typer(help="Lab amphorae.", no_args_is_help=True)
lab_app.add_typer(amphora_app, name="amphora")


class SpeakerName(StrEnum):
    bird = "bird"
    exabgp = "exabgp"


def require_root() -> None:
    if os.geteuid() != 0:
        console.print(
            "[red]l3dist needs root for the lab:[/red] it creates network namespaces, veths and "
            "bridges and runs FRR, BIRD and HAProxy. Run it as root (e.g. with sudo)."
        )
        raise typer.Exit(1)


@lab_app.command("up")
def lab_up(
    bgp_password: Annotated[
        str | None, typer.Option(help="MD5 password the ToR requires from amphorae")
    ] = None,
) -> None:
    """Build the lab fabric (idempotent)."""
    require_root()
    from l3dist_lab import fabric
    from l3dist_lab.config import LabConfig

    try:
        fabric.up(LabConfig(bgp_password=bgp_password))
    except RuntimeError as exc:
        raise fail(exc) from exc
    console.print("lab is up")


@lab_app.command("down")
def lab_down() -> None:
    """Remove every namespace, process, interface and file of the lab (idempotent)."""
    require_root()
    from l3dist_lab import fabric

    removed = fabric.down()
    console.print(f"lab is down ({len(removed)} items removed)")


@lab_app.command("status")
def lab_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What exists: namespaces, BGP sessions on the ToR, VIP routes in its FIB, amphorae."""
    require_root()
    from l3dist.common.process import pid_alive
    from l3dist_lab import amphora, fabric, plumbing
    from l3dist_lab.config import PREFIX

    if not fabric.is_up():
        if as_json:
            print_json({"up": False})
        else:
            console.print("lab is down")
        return
    sessions = fabric.bgp_sessions()
    routes = fabric.anycast_routes()
    amps = amphora.list_amphorae()

    def agent_alive(a: amphora.LabAmphora) -> bool:
        try:
            return pid_alive(int((a.dir / "agent.pid").read_text()))
        except (OSError, ValueError):
            return False

    data = {
        "up": True,
        "namespaces": plumbing.list_namespaces(PREFIX),
        "sessions": [s.__dict__ for s in sessions],
        "routes": routes,
        "amphorae": [dict(a.__dict__, agent_running=agent_alive(a)) for a in amps],
    }
    if as_json:
        print_json(data)
        return
    table = Table(title="BGP sessions on the ToR")
    for col in ("peer", "state", "remote AS", "prefixes"):
        table.add_column(col)
    for s in sessions:
        table.add_row(s.peer, s.state, str(s.remote_as), str(s.prefixes_received))
    console.print(table)
    table = Table(title="VIP routes in the ToR kernel FIB")
    table.add_column("prefix")
    table.add_column("next hops")
    for prefix, hops in routes.items():
        table.add_row(prefix, "\n".join(hops))
    console.print(table)
    table = Table(title="Amphorae")
    for col in ("id", "management", "front-end", "speaker", "agent"):
        table.add_column(col)
    for a in amps:
        table.add_row(
            a.id,
            f"{a.mgmt_ip4}\n{a.mgmt_ip6}",
            f"{a.frontend_ip4}\n{a.frontend_ip6}",
            a.speaker_driver,
            "running" if agent_alive(a) else "[red]stopped[/red]",
        )
    console.print(table)


@amphora_app.command("create")
def amphora_create(
    driver: Annotated[SpeakerName, typer.Option(help="BGP speaker driver")] = SpeakerName.bird,
    count: Annotated[int, typer.Option(min=1, max=50)] = 1,
) -> None:
    """Create lab amphorae (a lab host each, its agent given the amphora as by the controller)."""
    require_root()
    from l3dist_lab import amphora, fabric

    if not fabric.is_up():
        raise fail(RuntimeError("the lab is down; run `l3dist lab up` first"))
    for _ in range(count):
        amp = amphora.create(speaker_driver=driver.value)
        console.print(f"{amp.id}  agent {amp.agent_url}  front-end {amp.frontend_ip4}")


@amphora_app.command("list")
def amphora_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List lab amphorae."""
    require_root()
    from l3dist_lab import amphora

    amps = [a.__dict__ for a in amphora.list_amphorae()]
    if as_json:
        print_json(amps)
        return
    for a in amps:
        console.print(f"{a['id']}  {a['mgmt_ip4']}  {a['frontend_ip4']}  {a['speaker_driver']}")


@amphora_app.command("delete")
def amphora_delete(amphora_id: str) -> None:
    """Delete a lab amphora and everything it had."""
    require_root()
    from l3dist_lab import amphora

    amphora.delete(amphora_id)


member_app = typer.Typer(help="Lab member servers (HTTP, on the member network).")
lab_app.add_typer(member_app, name="member", no_args_is_help=True)


@member_app.command("add")
def member_add(name: str, port: Annotated[int, typer.Option(min=1, max=65535)] = 80) -> None:
    """Start a member server answering HTTP with its name."""
    require_root()
    from l3dist_lab import fabric, member

    if not fabric.is_up():
        raise fail(RuntimeError("the lab is down; run `l3dist lab up` first"))
    try:
        m = member.add(name, port)
    except ValueError as exc:
        raise fail(exc) from exc
    console.print(f"{m.name}  {m.ip4}  {m.ip6}  port {m.port}")


@member_app.command("list")
def member_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    require_root()
    from l3dist_lab import member

    members = [m.__dict__ for m in member.list_members()]
    if as_json:
        print_json(members)
        return
    for m in members:
        console.print(f"{m['name']}  {m['ip4']}  {m['ip6']}  port {m['port']}")


@member_app.command("remove")
def member_remove(name: str) -> None:
    require_root()
    from l3dist_lab import member

    member.remove(name)


def _for_each_amphora(vip: str, amphora_ids: list[str], action: str) -> None:
    from l3dist.amphora_client import AgentClientError
    from l3dist_lab import amphora, vips

    change = vips.announce if action == "announce" else vips.withdraw
    try:
        for amp_id in amphora_ids:
            change(amphora.get(amp_id), vip)
    except (KeyError, AgentClientError) as exc:
        raise fail(exc) from exc


@lab_app.command("announce")
def lab_announce(vip: str, amphora_id: Annotated[list[str], typer.Option("--amphora")]) -> None:
    """Plug a VIP on amphorae and register them (Register Amphora) so the ToR routes to them."""
    require_root()
    _for_each_amphora(vip, amphora_id, "announce")


@lab_app.command("withdraw")
def lab_withdraw(vip: str, amphora_id: Annotated[list[str], typer.Option("--amphora")]) -> None:
    """Unregister amphorae for a VIP (Unregister Amphora)."""
    require_root()
    _for_each_amphora(vip, amphora_id, "withdraw")


@lab_app.command("traffic")
def lab_traffic(vip: str, count: Annotated[int, typer.Option(min=1, max=100000)] = 300) -> None:
    """Open TCP connections to a VIP from the client namespace; print answers per amphora."""
    require_root()
    from l3dist_lab import traffic

    print_json(traffic.run_clients(vip, count))


def demo(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    connections: Annotated[int, typer.Option(min=10, max=10000)] = 300,
    amphorae: Annotated[int, typer.Option(min=1, max=16)] = 3,
) -> None:
    """An ACTIVE_ACTIVE load balancer built through the API and CLI on the embedded lab, with
    traffic per amphora and per member and a scale-out; tears everything down at the end."""
    require_root()
    from l3dist_lab.demo import Demo

    try:
        result = Demo(connections, None if as_json else console, amphorae).run()
    except RuntimeError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(result)


def register(app: typer.Typer) -> None:
    """The entry point: ``l3dist lab ...`` and ``l3dist demo``."""
    app.add_typer(lab_app, name="lab")
    app.command("demo")(demo)
