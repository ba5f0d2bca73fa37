"""The ``l3dist`` command line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="l3dist: anycast VIPs for active-active load balancers over BGP/ECMP.",
    no_args_is_help=True,
)
lab_app = typer.Typer(
    help="The embedded lab: a ToR (FRR), amphorae and a client, on this host.", no_args_is_help=True
)
amphora_app = typer.Typer(help="Lab amphorae.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks (JSON output).", no_args_is_help=True)
app.add_typer(lab_app, name="lab")
lab_app.add_typer(amphora_app, name="amphora")
app.add_typer(bench_app, name="bench")
db_app = typer.Typer(help="The control plane database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(emoji=False, highlight=False)


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


def fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def bench_result(run: Callable[[], dict[str, Any]], as_json: bool) -> dict[str, Any] | None:
    """A benchmark's result for its table; None once printed as JSON (--json). A lab that
    cannot run it fails the command with its message."""
    try:
        result = run()
    except RuntimeError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(result)
        return None
    return result


@lab_app.command("up")
def lab_up(
    bgp_password: Annotated[
        str | None, typer.Option(help="MD5 password the ToR requires from amphorae")
    ] = None,
) -> None:
    """Build the lab fabric (idempotent)."""
    require_root()
    from l3dist.lab import fabric
    from l3dist.lab.config import LabConfig

    try:
        fabric.up(LabConfig(bgp_password=bgp_password))
    except RuntimeError as exc:
        raise fail(exc) from exc
    console.print("lab is up")


@lab_app.command("down")
def lab_down() -> None:
    """Remove every namespace, process, interface and file of the lab (idempotent)."""
    require_root()
    from l3dist.lab import fabric

    removed = fabric.down()
    console.print(f"lab is down ({len(removed)} items removed)")


@lab_app.command("status")
def lab_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What exists: namespaces, BGP sessions on the ToR, VIP routes in its FIB, amphorae."""
    require_root()
    from l3dist.common.process import pid_alive
    from l3dist.lab import amphora, fabric, plumbing
    from l3dist.lab.config import PREFIX

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
    """Create lab amphorae (namespaces, ports, config drive, agent)."""
    require_root()
    from l3dist.lab import amphora, fabric

    if not fabric.is_up():
        raise fail(RuntimeError("the lab is down; run `l3dist lab up` first"))
    for _ in range(count):
        amp = amphora.create(speaker_driver=driver.value)
        console.print(f"{amp.id}  agent {amp.agent_url}  front-end {amp.frontend_ip4}")


@amphora_app.command("list")
def amphora_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List lab amphorae."""
    require_root()
    from l3dist.lab import amphora

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
    from l3dist.lab import amphora

    amphora.delete(amphora_id)


member_app = typer.Typer(help="Lab member servers (HTTP, on the member network).")
lab_app.add_typer(member_app, name="member", no_args_is_help=True)


@member_app.command("add")
def member_add(name: str, port: Annotated[int, typer.Option(min=1, max=65535)] = 80) -> None:
    """Start a member server answering HTTP with its name."""
    require_root()
    from l3dist.lab import fabric, member

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
    from l3dist.lab import member

    members = [m.__dict__ for m in member.list_members()]
    if as_json:
        print_json(members)
        return
    for m in members:
        console.print(f"{m['name']}  {m['ip4']}  {m['ip6']}  port {m['port']}")


@member_app.command("remove")
def member_remove(name: str) -> None:
    require_root()
    from l3dist.lab import member

    member.remove(name)


def _for_each_amphora(vip: str, amphora_ids: list[str], action: str) -> None:
    from l3dist.amphora_client import AgentClientError
    from l3dist.lab import amphora, vips

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
    from l3dist.lab import traffic

    print_json(traffic.run_clients(vip, count))


@app.command("demo")
def demo(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    connections: Annotated[int, typer.Option(min=10, max=10000)] = 300,
    amphorae: Annotated[int, typer.Option(min=1, max=16)] = 3,
) -> None:
    """An ACTIVE_ACTIVE load balancer built through the API and CLI on the embedded lab, with
    traffic per amphora and per member and a scale-out; tears everything down at the end."""
    require_root()
    from l3dist.demo import Demo

    try:
        result = Demo(connections, None if as_json else console, amphorae).run()
    except RuntimeError as exc:
        raise fail(exc) from exc
    if as_json:
        print_json(result)


@bench_app.command("announce")
def bench_announce(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    runs: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    driver: Annotated[SpeakerName, typer.Option(help="BGP speaker driver")] = SpeakerName.bird,
    ip_version: Annotated[int, typer.Option(min=4, max=6)] = 4,
) -> None:
    """Register/Unregister Amphora to the ToR FIB, beside the speaker driven directly."""
    require_root()
    from l3dist.bench import announce

    if ip_version not in (4, 6):
        raise fail(ValueError("--ip-version must be 4 or 6"))
    result = bench_result(lambda: announce.run(driver.value, runs, ip_version), as_json)
    if result is None:
        return
    table = Table(title=f"announce benchmark ({driver.value}, IPv{ip_version}, {runs} runs)")
    for col in ("path", "event", "min ms", "median ms", "max ms"):
        table.add_column(col)
    for path in ("agent", "speaker_direct"):
        for event, stats in result[path].items():
            table.add_row(path, event, *(str(stats[k]) for k in ("min", "median", "max")))
    console.print(table)
    console.print(f"l3dist overhead (median): {result['l3dist_overhead_ms']}")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Create the schema in an empty database, or upgrade it (the URL comes from the config)."""
    from l3dist.common import config
    from l3dist.db import session

    url = config.load().database.url
    session.upgrade(url, revision)
    console.print(f"database at revision {session.current_revision(url)}")


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="listen address (default: config)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (default: config)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Run the REST API (upgrades the database schema first)."""
    import uvicorn

    from l3dist.common import config
    from l3dist.db import session

    cfg = config.load()
    session.upgrade(cfg.database.url)
    uvicorn.run(
        "l3dist.api.app:app_from_config",
        factory=True,
        host=host or cfg.api.host,
        port=port or cfg.api.port,
        workers=workers,
        log_level="warning",
    )


@app.command("worker")
def worker() -> None:
    """Run the controller worker: takes queued flows from the database and runs or resumes
    them (upgrades the database schema first)."""
    import logging
    import signal

    from l3dist.common import config
    from l3dist.controller.worker import Worker, services_from_config
    from l3dist.db import session

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = config.load()
    session.upgrade(cfg.database.url)
    db = session.Database(cfg.database.url)
    w = Worker(cfg, services_from_config(cfg, db))
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    signal.signal(signal.SIGINT, lambda *_: w.stop())
    w.run_forever()


@app.command("health")
def health() -> None:
    """Run the health manager: receives the amphorae's signed heartbeats and fails over the
    ones that fall silent (circuit breaker on mass outages)."""
    import logging
    import signal

    from l3dist.common import config
    from l3dist.db import session
    from l3dist.health.manager import HealthManager

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = config.load()
    session.upgrade(cfg.database.url)
    manager = HealthManager(
        cfg.health, session.Database(cfg.database.url), config.heartbeat_key(cfg)
    )
    signal.signal(signal.SIGTERM, lambda *_: manager.stop())
    signal.signal(signal.SIGINT, lambda *_: manager.stop())
    try:
        manager.run_forever()
    finally:
        manager.close()
        logging.getLogger("l3dist.health").info("stopped; %s", manager.counters)


token_app = typer.Typer(help="API bearer tokens (auth_strategy = token).", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    project: Annotated[str, typer.Option(help="project the token acts for")],
    role: Annotated[list[str], typer.Option(help="role (repeat): admin, member, reader")],
    days: Annotated[int | None, typer.Option(help="expires after this many days")] = None,
    description: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a token; it is printed once and only its SHA-256 is stored."""
    import secrets

    from l3dist.api.context import hash_token, token_expiry
    from l3dist.common import config
    from l3dist.db.models import ApiToken
    from l3dist.db.session import Database

    cfg = config.load()
    token = secrets.token_urlsafe(32)
    with Database(cfg.database.url).session() as s:
        s.add(
            ApiToken(
                token_sha256=hash_token(token),
                project_id=project,
                roles=role,
                description=description,
                expires_at=token_expiry(days),
            )
        )
    print(token)


@bench_app.command("lifecycle")
def bench_lifecycle(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    runs: Annotated[int, typer.Option(min=1, max=100)] = 5,
    amphorae: Annotated[int, typer.Option(min=1, max=16)] = 3,
) -> None:
    """Load balancer create until it carries traffic, and scale-out by one, through the API on
    the lab (median of several runs; baseline: one amphora built directly)."""
    require_root()
    from l3dist.bench import lifecycle

    result = bench_result(lambda: lifecycle.run(runs, amphorae), as_json)
    if result is None:
        return
    table = Table(title=f"Lifecycle, {amphorae} amphorae, {runs} runs (seconds)")
    for col in ("phase", "min", "median", "max", "x amphora build"):
        table.add_column(col)
    for phase in ("amphora_build", "create_to_active", "create_to_traffic", "scale_out"):
        r = result[phase]
        ratio = result["ratio_to_amphora_build"].get(phase, 1.0)
        table.add_row(phase, str(r["min"]), str(r["median"]), str(r["max"]), str(ratio))
    console.print(table)


@bench_app.command("failover")
def bench_failover(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    runs: Annotated[int, typer.Option(min=1, max=100)] = 10,
    whole_runs: Annotated[int, typer.Option(min=0, max=100)] = 10,
) -> None:
    """Hard failure (frozen amphora, BFD 50 ms x 3; hold timer 3 s as the baseline), soft failure
    (HAProxy killed) and recovery, timed to the ToR's FIB, with requests lost per event; and
    through the controller, a frozen amphora until its replacement is in the ECMP set."""
    require_root()
    from l3dist.bench import failover

    result = bench_result(lambda: failover.run(runs, whole_runs), as_json)
    if result is None:
        return
    table = Table(title=f"Failover to ToR FIB, {runs} runs (ms)")
    for col in ("event", "min", "median", "max", "requests lost (median)"):
        table.add_column(col)
    events = ("hard_bfd", "hard_hold_timer", "recovery", "soft", "soft_recovery", "whole_again")
    for event in events:
        if event not in result:
            continue
        r = result[event]
        lost = result["requests_lost"].get(event, {}).get("median", "")
        table.add_row(event, str(r["min"]), str(r["median"]), str(r["max"]), str(lost))
    console.print(table)


@bench_app.command("flows")
def bench_flows(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    connections: Annotated[int, typer.Option(min=10, max=2000)] = 300,
    ip_version: Annotated[int, typer.Option(help="4 or 6: VIP and next hops")] = 4,
) -> None:
    """Long-lived connections through scale-out, drain (first, middle, last next hop) and a dead
    amphora, with flow rescue off and on: connections broken, flows the router moved, copies
    per rescued packet, round trip and CPU after the change against before it."""
    require_root()
    if ip_version not in (4, 6):
        raise typer.BadParameter("4 or 6", param_hint="--ip-version")
    from l3dist.bench import flows

    result = bench_result(lambda: flows.run(connections, ip_version), as_json)
    if result is None:
        return
    table = Table(title=f"Flow rescue, {connections} long-lived connections, IPv{ip_version}")
    for col in ("scenario", "broken, rescue off", "broken, rescue on", "flows moved",
                "copies per rescued packet (steady)"):  # fmt: skip
        table.add_column(col)
    for scenario in flows.SCENARIOS:
        off, on = result[scenario]["rescue_off"], result[scenario]["rescue_on"]
        steady = on.get("copies_per_rescued_packet_steady")
        table.add_row(scenario, str(off["broken"]), str(on["broken"]), str(on["flows_moved"]),
                      str(steady))  # fmt: skip
    console.print(table)
    cost = result["cost"]
    console.print(
        f"round trip p50 after/before a scale-out ({cost['rtt']['connections']} connections): "
        f"rescue on {cost['rtt']['rescue_on'].get('p50_after_vs_before')}, "
        f"off {cost['rtt']['rescue_off'].get('p50_after_vs_before')}; "
        f"CPU busy share rescue on/off: {cost['cpu']['on_vs_off']}"
    )


@bench_app.command("api")
def bench_api(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    load_balancers: Annotated[int, typer.Option(min=1, max=1000000)] = 10000,
    requests: Annotated[int, typer.Option(min=10, max=100000)] = 200,
    seconds: Annotated[float, typer.Option(min=1, max=600)] = 5.0,
    clients: Annotated[int, typer.Option(min=1, max=256)] = 8,
    postgres_url: Annotated[
        str | None,
        typer.Option(
            envvar="L3DIST_BENCH_POSTGRES_URL",
            help="PostgreSQL server (a role that may CREATE DATABASE)",
        ),
    ] = None,
) -> None:
    """API latency (p50/p99) and throughput with many load balancers, SQLite and PostgreSQL."""
    from l3dist.bench import api as bench

    result = bench.run(load_balancers, requests, seconds, clients, postgres_url)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"API benchmark ({load_balancers} load balancers, 1 worker)")
    for col in ("database", "create p50/p99", "show p50/p99", "list p50/p99", "show req/s"):
        table.add_column(col)
    for db in ("sqlite", "postgresql"):
        r = result[db]
        if "skipped" in r:
            table.add_row(db, "skipped", "", "", "")
            continue
        table.add_row(
            db,
            *(
                f"{r[k]['p50_ms']} / {r[k]['p99_ms']} ms"
                for k in ("create", "show", "list_page_100")
            ),
            str(r["show_requests_per_second"]),
        )
    console.print(table)


@app.command("agent")
def agent(config: Annotated[str, typer.Option(help="config drive file")]) -> None:
    """Run the amphora agent (normally started by the compute driver at amphora boot)."""
    import sys

    from l3dist.amphora_agent.__main__ import main

    sys.argv = ["l3dist-agent", "--config", config]
    main()


def main() -> None:
    """Console script: API resource commands go to cli_api (click), the rest to this typer app."""
    import sys

    from l3dist import cli_api

    if len(sys.argv) > 1 and sys.argv[1] in cli_api.RESOURCES:
        cli_api.cli(prog_name="l3dist")
    else:
        app()
