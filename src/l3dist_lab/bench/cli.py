"""``l3dist bench ...``: the benchmarks (JSON output), added to the l3dist command line through
the ``l3dist.cli_plugins`` entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from l3dist.cli import console, fail, print_json
from l3dist_lab.cli import SpeakerName, require_root

bench_app = typer.Typer(help="Benchmarks (JSON output).", no_args_is_help=True)


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


@bench_app.command("announce")
def bench_announce(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    runs: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    driver: Annotated[SpeakerName, typer.Option(help="BGP speaker driver")] = SpeakerName.bird,
    ip_version: Annotated[int, typer.Option(min=4, max=6)] = 4,
) -> None:
    """Register/Unregister Amphora to the ToR FIB, beside the speaker driven directly."""
    require_root()
    from l3dist_lab.bench import announce

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


@bench_app.command("lifecycle")
def bench_lifecycle(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    runs: Annotated[int, typer.Option(min=1, max=100)] = 5,
    amphorae: Annotated[int, typer.Option(min=1, max=16)] = 3,
) -> None:
    """Load balancer create until it carries traffic, and scale-out by one, through the API on
    the lab (median of several runs; baseline: one amphora built directly)."""
    require_root()
    from l3dist_lab.bench import lifecycle

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
    from l3dist_lab.bench import failover

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


@bench_app.command("fip")
def bench_fip(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    runs: Annotated[int, typer.Option(min=1, max=100)] = 5,
    failures: Annotated[int, typer.Option(min=0, max=20)] = 3,
) -> None:
    """A floating IP against its VIP in the same run: associate to answering (baseline: a
    listener start), dissociate to silent (a listener stop), and requests lost by each when
    an amphora's host freezes."""
    require_root()
    from l3dist_lab.bench import fip

    result = bench_result(lambda: fip.run(runs, failures), as_json)
    if result is None:
        return
    table = Table(title=f"Floating IP against VIP, {runs} runs (ms)")
    for col in ("event", "min", "median", "max"):
        table.add_column(col)
    for event in ("associate_to_answering", "vip_start_to_answering", "dissociate_to_silent",
                  "vip_stop_to_silent"):  # fmt: skip
        r = result[event]
        table.add_row(event, str(r["min"]), str(r["median"]), str(r["max"]))
    console.print(table)
    for name, lost in result.get("requests_lost", {}).items():
        console.print(f"requests lost when an amphora fails, {name}: median {lost['median']}")


@bench_app.command("flows")
def bench_flows(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    connections: Annotated[int, typer.Option(min=10, max=2000)] = 300,
    ip_version: Annotated[int, typer.Option(help="4 or 6: VIP and next hops")] = 4,
    scenario: Annotated[
        list[str] | None,
        typer.Option(help="run only these scenarios (repeat it); default: all of them"),
    ] = None,
) -> None:
    """Long-lived connections through scale-out, drain (first, middle, last next hop) and a dead
    amphora, with flow rescue off and on: connections broken, flows the router moved, copies
    per rescued packet, round trip and CPU after the change against before it."""
    require_root()
    if ip_version not in (4, 6):
        raise typer.BadParameter("4 or 6", param_hint="--ip-version")
    from l3dist_lab.bench import flows

    chosen = tuple(scenario) if scenario else flows.SCENARIOS
    if unknown := [name for name in chosen if name not in flows.SCENARIOS]:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: not one of {', '.join(flows.SCENARIOS)}",
            param_hint="--scenario",
        )
    result = bench_result(lambda: flows.run(connections, ip_version, chosen), as_json)
    if result is None:
        return
    table = Table(title=f"Flow rescue, {connections} long-lived connections, IPv{ip_version}")
    for col in ("scenario", "broken, rescue off", "broken, rescue on", "flows moved",
                "copies per rescued packet (steady)"):  # fmt: skip
        table.add_column(col)
    for scenario_name in chosen:
        off, on = result[scenario_name]["rescue_off"], result[scenario_name]["rescue_on"]
        steady = on.get("copies_per_rescued_packet_steady")
        table.add_row(scenario_name, str(off["broken"]), str(on["broken"]), str(on["flows_moved"]),
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
    from l3dist_lab.bench import api as bench

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


def _counts(text: str, option: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("comma-separated integers", param_hint=option) from None
    if not counts or min(counts) < 1:
        raise typer.BadParameter("at least one count, each 1 or more", param_hint=option)
    return counts


@bench_app.command("distributor")
def bench_distributor(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    vips: Annotated[str, typer.Option(help="VIP counts to register")] = "1,100,1000",
    load_balancers: Annotated[str, typer.Option(help="load balancer counts for sessions")] = "1,5",
    runs: Annotated[int, typer.Option(min=1, max=100)] = 5,
    driver: Annotated[SpeakerName, typer.Option(help="BGP speaker driver")] = SpeakerName.bird,
) -> None:
    """Combined mode against dedicated distributors (ADD-PATH) in one run: BGP sessions at the
    router, VIPs registered to all their next hops in the FIB, failure to FIB removal."""
    require_root()
    vip_counts = _counts(vips, "--vips")
    lb_counts = _counts(load_balancers, "--load-balancers")
    if max(vip_counts) > 5000:
        raise typer.BadParameter("at most 5000", param_hint="--vips")
    if max(lb_counts) > 20:
        raise typer.BadParameter("at most 20 (3 lab hosts each in combined mode)",
                                 param_hint="--load-balancers")  # fmt: skip
    from l3dist_lab.bench import distributor

    result = bench_result(
        lambda: distributor.run(vip_counts, runs, lb_counts, driver.value), as_json
    )
    if result is None:
        return
    table = Table(title=f"Distributor modes ({driver.value}): combined | dedicated")
    for col in ("figure", "combined median", "dedicated median"):
        table.add_column(col)
    for count, sessions in result["sessions"]["combined"].items():
        table.add_row(f"BGP sessions, {count} load balancers", str(sessions),
                      str(result["sessions"]["dedicated"][count]))  # fmt: skip
    for count, entry in result["register_to_fib_s"].items():
        table.add_row(f"{count} VIPs registered to FIB (s)", str(entry["combined"]["median"]),
                      str(entry["dedicated"]["median"]))  # fmt: skip
    for kind, entry in result["failure_to_fib_ms"].items():
        table.add_row(f"{kind} failure to FIB removal (ms)", str(entry["combined"]["median"]),
                      str(entry["dedicated"]["median"]))  # fmt: skip
    console.print(table)


def register(app: typer.Typer) -> None:
    """The entry point: ``l3dist bench ...``."""
    app.add_typer(bench_app, name="bench")
