"""The ``l3dist`` command line: the control plane's commands (database, API, worker, health
manager, tokens, the agent) and the REST API's resources (``cli_api``).

Other packages add commands through the ``l3dist.cli_plugins`` entry points: each names a
function that takes this typer app and adds its commands to it (the lab adds ``lab``,
``bench`` and ``demo``). The core knows none of them.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer
from rich.console import Console

CLI_PLUGINS = "l3dist.cli_plugins"

app = typer.Typer(
    help="l3dist: anycast VIPs for active-active load balancers over BGP/ECMP.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="The control plane database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console(emoji=False, highlight=False)


def fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


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
    if workers > 1:  # the workers' metrics added up on every scrape
        from l3dist.common.metrics import prepare_multiprocess

        prepare_multiprocess(cfg.certificates.ca_dir.parent / f"api-metrics-{port or cfg.api.port}")
    uvicorn.run(
        "l3dist.api.app:app_from_config",
        factory=True,
        host=host or cfg.api.host,
        port=port or cfg.api.port,
        workers=workers,
        log_level="warning",
        timeout_keep_alive=cfg.api.keep_alive_timeout,
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
    if cfg.controller.metrics_port:
        from prometheus_client import REGISTRY

        from l3dist.common.metrics import serve
        from l3dist.controller.worker import QueueCollector

        REGISTRY.register(QueueCollector(db))
        serve(cfg.metrics.bind_host, cfg.controller.metrics_port)
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
        cfg.health,
        session.Database(cfg.database.url),
        config.heartbeat_key(cfg),
        metrics_host=cfg.metrics.bind_host,
    )
    signal.signal(signal.SIGTERM, lambda *_: manager.stop())
    signal.signal(signal.SIGINT, lambda *_: manager.stop())
    try:
        manager.run_forever()
    finally:
        manager.close()
        logging.getLogger("l3dist.health").info("stopped; %s", manager.counters)


@app.command("routerview")
def routerview() -> None:
    """Run the BMP collector: the operator's routers stream BMP to it (pmacct's pmbmpd), and it
    keeps what each router received from l3dist's speakers in the database."""
    import logging
    import os
    import signal

    from l3dist.common import config
    from l3dist.db import session
    from l3dist.routerview.collector import Collector

    logging.basicConfig(
        level=os.environ.get("L3DIST_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s"
    )
    cfg = config.load()
    session.upgrade(cfg.database.url)
    workdir = cfg.router_view.state_dir or cfg.certificates.ca_dir.parent / "routerview"
    collector = Collector(cfg.router_view, session.Database(cfg.database.url), workdir)
    if cfg.router_view.metrics_port:
        from prometheus_client import REGISTRY

        from l3dist.common.metrics import serve
        from l3dist.routerview.metrics import ViewCollector

        REGISTRY.register(ViewCollector(collector.view, collector.counters, collector.db))
        serve(cfg.metrics.bind_host, cfg.router_view.metrics_port)
    signal.signal(signal.SIGTERM, lambda *_: collector.stop())
    signal.signal(signal.SIGINT, lambda *_: collector.stop())
    try:
        collector.run_forever()
    finally:
        logging.getLogger("l3dist.routerview").info("stopped; %s", collector.counters)


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


@app.command("agent")
def agent(config: Annotated[str, typer.Option(help="config drive file")]) -> None:
    """Run the amphora agent (normally started by the compute driver at amphora boot)."""
    import sys

    from l3dist.amphora_agent.__main__ import main

    sys.argv = ["l3dist-agent", "--config", config]
    main()


def load_plugins() -> None:
    """Add the commands of every installed ``l3dist.cli_plugins`` entry point."""
    for plugin in sorted(entry_points(group=CLI_PLUGINS), key=lambda ep: ep.name):
        plugin.load()(app)


def core_commands() -> set[str]:
    commands = {(c.name or c.callback.__name__) for c in app.registered_commands if c.callback}
    return commands | {g.name for g in app.registered_groups if g.name}


def main() -> None:
    """Console script: API resource commands go to cli_api (click), the rest to this typer app
    with its plugins."""
    import sys

    from l3dist import cli_api

    if len(sys.argv) > 1 and sys.argv[1] in cli_api.RESOURCES:
        cli_api.cli(prog_name="l3dist")
    else:
        # The control plane's own commands run without any plugin loaded: a controller
        # process never imports what it does not need (the lab's, say).
        if len(sys.argv) < 2 or sys.argv[1] not in core_commands():
            load_plugins()
        app()
