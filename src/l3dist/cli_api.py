"""``l3dist loadbalancer|listener|pool|member|healthmonitor|distributor|bgp-peer|bgp-speaker|amphora
|amphora-host create|list|show|set|delete`` and ``l3dist distributor vip create|list|show|delete``:
the REST API from the shell, shaped like ``openstack loadbalancer``.

Commands are generated from one table of resources and their options. Objects are named by id
or by name (a name must match exactly one object). Output is a table, or JSON with ``-f json``.
The API is found at ``$L3DIST_API_URL`` (default http://127.0.0.1:9876); ``$L3DIST_TOKEN`` sends a
bearer token, ``$L3DIST_PROJECT_ID`` / ``$L3DIST_ROLES`` set the no-auth development headers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
import httpx
from rich.console import Console
from rich.table import Table

# Piped output keeps whole ids (a terminal wraps to its own width).
console = Console(emoji=False, highlight=False, width=None if sys.stdout.isatty() else 250)


@dataclass(frozen=True)
class Opt:
    """A CLI option mapped to an API field."""

    flag: str  # e.g. "--vip-subnet-id"
    api: str  # e.g. "vip_subnet_id"
    type: Any = str
    required: bool = False
    multiple: bool = False
    on_create: bool = True
    on_set: bool = True
    resolve: str | None = None  # resource whose name-or-id this option takes
    help: str = ""

    @property
    def param(self) -> str:
        """The click parameter's name (the API field as an identifier)."""
        return self.api.replace(".", "_").replace(":", "_")


@dataclass(frozen=True)
class Resource:
    cli: str
    path: str
    key: str
    plural: str
    columns: tuple[str, ...]
    options: tuple[Opt, ...] = ()
    parent: str | None = None  # members live under a pool
    parent_field: str | None = None  # create takes the parent as a positional argument
    creatable: bool = True
    extra: tuple[str, ...] = ()
    toggles: bool = True  # --enable / --disable
    toggle_field: str = "admin_state_up"  # the API field --enable / --disable set
    settable: bool = True  # a set command (PUT)
    delete_flags: tuple[str, ...] = field(default_factory=tuple)


NAME = Opt("--name", "name", help="name")
DESCRIPTION = Opt("--description", "description", help="description")

RESOURCES: dict[str, Resource] = {
    r.cli: r
    for r in (
        Resource(
            "loadbalancer", "/v2/lbaas/loadbalancers", "loadbalancer", "loadbalancers",
            ("id", "name", "project_id", "vip_address", "topology", "amphora_count",
             "provisioning_status", "operating_status"),
            (NAME, DESCRIPTION,
             Opt("--vip-subnet-id", "vip_subnet_id", on_set=False, help="VIP subnet (id)"),
             Opt("--vip-network-id", "vip_network_id", on_set=False, help="VIP network (id)"),
             Opt("--vip-address", "vip_address", on_set=False, help="VIP address"),
             Opt("--frontend-subnet-id", "frontend_subnet_id", on_set=False,
                 help="front-end (provider) subnet; default: the VIP family's front end"),
             Opt("--frontend-network-id", "frontend_network_id", on_set=False),
             Opt("--topology", "topology", click.Choice(["SINGLE", "ACTIVE_ACTIVE"]),
                 on_set=False),
             Opt("--amphora-count", "amphora_count", int, help="amphorae (ACTIVE_ACTIVE)"),
             Opt("--distributor", "distributor_id", on_set=False, resolve="distributor"),
             Opt("--project-id", "project_id", on_set=False)),
            extra=("status", "failover", "stats", "routes"), delete_flags=("cascade",),
        ),
        Resource(
            "listener", "/v2/lbaas/listeners", "listener", "listeners",
            ("id", "name", "protocol", "protocol_port", "default_pool_id",
             "provisioning_status", "operating_status"),
            (NAME, DESCRIPTION,
             Opt("--protocol", "protocol", click.Choice(["HTTP", "HTTPS", "TCP"]), True,
                 on_set=False),
             Opt("--protocol-port", "protocol_port", int, True, on_set=False),
             Opt("--connection-limit", "connection_limit", int),
             Opt("--default-pool", "default_pool_id", resolve="pool")),
            extra=("stats",),
            parent_field="loadbalancer_id",
        ),
        Resource(
            "pool", "/v2/lbaas/pools", "pool", "pools",
            ("id", "name", "protocol", "lb_algorithm", "provisioning_status",
             "operating_status"),
            (NAME, DESCRIPTION,
             Opt("--protocol", "protocol", click.Choice(["HTTP", "HTTPS", "TCP", "PROXY"]), True,
                 on_set=False),
             Opt("--lb-algorithm", "lb_algorithm",
                 click.Choice(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"]), True),
             Opt("--listener", "listener_id", on_set=False, resolve="listener"),
             Opt("--loadbalancer", "loadbalancer_id", on_set=False, resolve="loadbalancer")),
        ),
        Resource(
            "member", "/v2/lbaas/pools/{parent}/members", "member", "members",
            ("id", "name", "address", "protocol_port", "weight", "provisioning_status",
             "operating_status"),
            (NAME,
             Opt("--address", "address", required=True, on_set=False),
             Opt("--protocol-port", "protocol_port", int, True, on_set=False),
             Opt("--weight", "weight", int),
             Opt("--subnet-id", "subnet_id", on_set=False)),
            parent="pool",
        ),
        Resource(
            "healthmonitor", "/v2/lbaas/healthmonitors", "healthmonitor", "healthmonitors",
            ("id", "name", "type", "delay", "timeout", "max_retries", "provisioning_status"),
            (NAME,
             Opt("--type", "type", click.Choice(["HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO"]),
                 True, on_set=False),
             Opt("--delay", "delay", int, True),
             Opt("--timeout", "timeout", int, True),
             Opt("--max-retries", "max_retries", int, True),
             Opt("--max-retries-down", "max_retries_down", int),
             Opt("--url-path", "url_path"),
             Opt("--http-method", "http_method"),
             Opt("--expected-codes", "expected_codes")),
            parent_field="pool_id",
        ),
        Resource(
            "distributor", "/v2/lbaas/distributors", "distributor", "distributors",
            ("id", "name", "distributor_type", "status", "frontend_subnet"),
            (NAME, DESCRIPTION,
             Opt("--type", "distributor_type", click.Choice(["L3_BGP"]), on_set=False),
             Opt("--frontend-subnet", "frontend_subnet"),
             Opt("--bgp-speaker", "config_data.bgp_speaker_ids", multiple=True,
                 resolve="bgp-speaker", help="BGP speaker (repeat: one per IP version)"),
             Opt("--mode", "config_data.mode", click.Choice(["combined", "dedicated"]),
                 on_set=False, help="combined: each amphora its own speaker (default); "
                 "dedicated: distributor amphorae hold the only BGP sessions"),
             Opt("--distributor-amphorae", "config_data.distributor_amphorae", int,
                 on_set=False, help="dedicated mode: how many distributor amphorae (2-8)")),
            toggles=False, extra=("status",),
        ),
        Resource(
            "bgp-peer", "/v2/lbaas/bgppeers", "bgp_peer", "bgp_peers",
            ("id", "name", "peer_ip", "remote_as", "auth_type", "ttl_hops", "hold_time",
             "keepalive_interval", "bfd_enabled"),
            (NAME,
             Opt("--peer-ip", "peer_ip", required=True, on_set=False),
             Opt("--remote-as", "remote_as", int, True),
             Opt("--auth-type", "auth_type", click.Choice(["none", "md5"])),
             Opt("--password", "password", help="MD5 password (write-only)"),
             Opt("--ttl-hops", "ttl_hops", int),
             Opt("--hold-time", "hold_time", int),
             Opt("--keepalive-interval", "keepalive_interval", int),
             Opt("--bfd/--no-bfd", "bfd_enabled", bool, help="BFD on the session"),
             Opt("--bfd-transmit-interval", "bfd_transmit_interval_ms", int, help="ms"),
             Opt("--bfd-receive-interval", "bfd_receive_interval_ms", int, help="ms"),
             Opt("--bfd-detect-multiplier", "bfd_detect_multiplier", int)),
            toggles=False,
        ),
        Resource(
            "bgp-speaker", "/v2/lbaas/bgpspeakers", "bgp_speaker", "bgp_speakers",
            ("id", "name", "ip_version", "local_as", "peers"),
            (NAME,
             Opt("--ip-version", "ip_version", click.Choice(["4", "6"]), True, on_set=False),
             Opt("--local-as", "local_as", int, True)),
            toggles=False, extra=("add-peer", "remove-peer"),
        ),
        Resource(
            "network", "/v2/networks", "network", "networks",
            ("id", "name", "subnets", "mtu", "router:external"),
            (NAME, Opt("--mtu", "mtu", int, help="MTU (default 1500)"),
             Opt("--external/--internal", "router:external", bool,
                 help="a floating-IP (external) network")),
            toggles=False, settable=False,
        ),
        Resource(
            "subnet", "/v2/subnets", "subnet", "subnets",
            ("id", "name", "network_id", "cidr", "gateway_ip", "role"),
            (NAME,
             Opt("--network", "network_id", required=True, resolve="network"),
             Opt("--cidr", "cidr", required=True),
             Opt("--role", "role", click.Choice(["anycast", "frontend", "management", "member",
                                                 "external"]), help="what it is for"),
             Opt("--gateway-ip", "gateway_ip",
                 help="the router's address (default: the first; 'none': no gateway)"),
             Opt("--allocation-start-index", "allocation_start_index", int,
                 help="first host index l3dist hands out (default 100)")),
            toggles=False, settable=False,
        ),
        Resource(
            "amphora-host", "/v2/octavia/amphora-hosts", "amphora_host", "amphora_hosts",
            ("id", "name", "status", "enabled", "management_address", "amphora_id"),
            (NAME,
             Opt("--token-ttl", "token_ttl", int, on_set=False,
                 help="seconds the enrollment token is valid (default 3600)")),
            toggle_field="enabled", extra=("enroll", "reset"),
        ),
        Resource(
            "amphora", "/v2/octavia/amphorae", "amphora", "amphorae",
            ("id", "loadbalancer_id", "status", "operating_status", "role", "service_type",
             "lb_network_ip", "frontend_ip"),
            creatable=False, toggles=False, extra=("failover", "drain"),
        ),
    )
}  # fmt: skip


class ApiClient:
    def __init__(self) -> None:
        headers = {}
        if token := os.environ.get("L3DIST_TOKEN"):
            headers["Authorization"] = f"Bearer {token}"
        if project := os.environ.get("L3DIST_PROJECT_ID"):
            headers["X-Project-Id"] = project
        if roles := os.environ.get("L3DIST_ROLES"):
            headers["X-Roles"] = roles
        url = os.environ.get("L3DIST_API_URL", "http://127.0.0.1:9876")
        self.http = httpx.Client(base_url=url, headers=headers, timeout=30)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"cannot reach the API at {self.http.base_url}: {exc}"
            ) from None
        if response.status_code >= 400:
            try:
                message = response.json().get("faultstring", response.text)
            except ValueError:
                message = response.text
            raise click.ClickException(f"{message} (HTTP {response.status_code})")
        return response.json() if response.content else None

    def find(
        self, resource: Resource, name_or_id: str, parent: str | None = None
    ) -> dict[str, Any]:
        path = resource.path.format(parent=parent or "")
        response = self.http.get(f"{path}/{name_or_id}")
        if response.status_code == 200:
            return dict(response.json()[resource.key])
        matches = self.call("GET", path, params={"name": name_or_id})[resource.plural]
        if len(matches) == 1:
            return dict(matches[0])
        if not matches:
            raise click.ClickException(f"no {resource.cli} with name or id {name_or_id}")
        raise click.ClickException(f"more than one {resource.cli} is named {name_or_id}; use an id")


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(v.get("id", json.dumps(v)) if isinstance(v, dict) else str(v)
                         for v in value)  # fmt: skip
    if isinstance(value, dict):
        return json.dumps(value)
    return "" if value is None else str(value)


def output(data: Any, fmt: str, columns: tuple[str, ...] = ()) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    table = Table(show_lines=False)
    if isinstance(data, list):
        for column in columns:
            table.add_column(column)
        for item in data:
            table.add_row(*[_cell(item.get(c)) for c in columns])
    else:
        table.add_column("Field")
        table.add_column("Value")
        for key, value in data.items():
            table.add_row(key, _cell(value))
    console.print(table)


FORMAT = click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]),
                      default="table", show_default=True, help="output format")  # fmt: skip
WAIT = click.option("--wait", is_flag=True,
                    help="wait until the controller has done it (ACTIVE, or gone)")  # fmt: skip
WAIT_TIMEOUT = 600.0


def wait_done(client: ApiClient, resource: Resource, path: str, gone: bool = False
              ) -> dict[str, Any] | None:  # fmt: skip
    """Poll an object until the controller finished with it: ACTIVE, or absent after a delete;
    ERROR or the timeout fail the command."""
    deadline = time.monotonic() + WAIT_TIMEOUT
    while True:
        response = client.http.get(path)
        if response.status_code == 404 and gone:
            return None
        obj = response.json()[resource.key] if response.is_success else client.call("GET", path)
        status = obj.get("provisioning_status", obj.get("status"))  # distributors: status
        if status is None or (status == "ACTIVE" and not gone) or (gone and status == "DELETED"):
            return dict(obj)
        if status == "ERROR":
            raise click.ClickException(f"{resource.cli} {obj['id']} went to ERROR")
        if time.monotonic() > deadline:
            raise click.ClickException(f"{resource.cli} {obj['id']} still {status}")
        time.sleep(0.2)


def _body(client: ApiClient, resource: Resource, values: dict[str, Any], creating: bool
          ) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {}
    for opt in resource.options:
        value = values.get(opt.param)
        if (
            value in (None, ())
            or (creating and not opt.on_create)
            or (not creating and not opt.on_set)
        ):
            continue
        if opt.resolve:
            target = RESOURCES[opt.resolve]
            value = ([client.find(target, v)["id"] for v in value] if opt.multiple
                     else client.find(target, value)["id"])  # fmt: skip
        if opt.api == "ip_version":
            value = int(str(value))
        if opt.api == "gateway_ip" and value == "none":
            value = None
        head, _, tail = opt.api.partition(".")
        if tail:
            body.setdefault(head, {})[tail] = value
        else:
            body[head] = value
    if resource.toggles and values.get("admin_state_up") is not None:
        body[resource.toggle_field] = values["admin_state_up"]
    return body


def _options(resource: Resource, creating: bool) -> Callable[[Any], Any]:
    def decorate(fn: Any) -> Any:
        for opt in reversed(resource.options):
            if (creating and not opt.on_create) or (not creating and not opt.on_set):
                continue
            # default None: a flag not given is not sent (a --x/--no-x flag would be False).
            fn = click.option(opt.flag, opt.param, type=opt.type,
                              required=opt.required and creating, multiple=opt.multiple,
                              default=() if opt.multiple else None,
                              help=opt.help or None)(fn)  # fmt: skip
        if resource.toggles:
            fn = click.option("--enable/--disable", "admin_state_up", default=None,
                              help="administrative state")(fn)  # fmt: skip
        return fn

    return decorate


def build_group(resource: Resource) -> click.Group:
    group = click.Group(resource.cli, help=f"{resource.cli} resources of the l3dist API.")
    parent = RESOURCES[resource.parent] if resource.parent else None
    parent_arg = click.argument("parent_ref", metavar=(parent.cli.upper() if parent else ""))

    def parent_id(client: ApiClient, ref: str | None) -> str | None:
        return client.find(parent, ref)["id"] if parent and ref else None

    def path(client: ApiClient, ref: str | None) -> str:
        return resource.path.format(parent=parent_id(client, ref) or "")

    def maybe_parent(fn: Any) -> Any:
        return parent_arg(fn) if parent else fn

    @group.command("list", help=f"List {resource.plural}.")
    @FORMAT
    @maybe_parent
    def list_cmd(fmt: str, parent_ref: str | None = None) -> None:
        client = ApiClient()
        items = client.call("GET", path(client, parent_ref))[resource.plural]
        output(items, fmt, resource.columns)

    @group.command("show", help=f"Show a {resource.cli}.")
    @FORMAT
    @maybe_parent
    @click.argument("ref", metavar=resource.cli.upper())
    def show_cmd(fmt: str, ref: str, parent_ref: str | None = None) -> None:
        client = ApiClient()
        output(client.find(resource, ref, parent_id(client, parent_ref)), fmt)

    if resource.creatable:
        creator_arg = resource.parent_field

        @group.command("create", help=f"Create a {resource.cli}.")
        @FORMAT
        @WAIT
        @_options(resource, creating=True)
        @maybe_parent
        def create_cmd(fmt: str, wait: bool, parent_ref: str | None = None, **values: Any) -> None:
            client = ApiClient()
            body = _body(client, resource, values, creating=True)
            if creator_arg:
                owner = values.pop("owner_ref")
                kind = "loadbalancer" if creator_arg == "loadbalancer_id" else "pool"
                body[creator_arg] = client.find(RESOURCES[kind], owner)["id"]
            if resource.cli == "distributor":
                body.setdefault("distributor_type", "L3_BGP")
            result = client.call("POST", path(client, parent_ref), json={resource.key: body})
            obj = result[resource.key]
            if wait:
                obj = wait_done(client, resource, f"{path(client, parent_ref)}/{obj['id']}")
            if "enrollment_token" in result:  # shown once: the host's agent enrolls with it
                obj = {**obj, "enrollment_token": result["enrollment_token"]}
            output(obj, fmt)

        if "enroll" in resource.extra:  # an amphora host is created to be enrolled
            group.add_command(create_cmd, "enroll")

        if creator_arg:
            label = "LOADBALANCER" if creator_arg == "loadbalancer_id" else "POOL"
            create_cmd = click.argument("owner_ref", metavar=label)(create_cmd)

        @FORMAT
        @WAIT
        @maybe_parent
        @click.argument("ref", metavar=resource.cli.upper())
        @_options(resource, creating=False)
        def set_cmd(
            fmt: str, wait: bool, ref: str, parent_ref: str | None = None, **values: Any
        ) -> None:
            client = ApiClient()
            obj = client.find(resource, ref, parent_id(client, parent_ref))
            body = _body(client, resource, values, creating=False)
            if not body:
                raise click.UsageError("nothing to change: give at least one option")
            result = client.call("PUT", f"{path(client, parent_ref)}/{obj['id']}",
                                 json={resource.key: body})  # fmt: skip
            if wait:
                wait_done(client, resource, f"{path(client, parent_ref)}/{obj['id']}")
                result = client.call("GET", f"{path(client, parent_ref)}/{obj['id']}")
            output(result[resource.key], fmt)

        if resource.settable:
            group.command("set", help=f"Change a {resource.cli}.")(set_cmd)

        @group.command("delete", help=f"Delete a {resource.cli}.")
        @WAIT
        @maybe_parent
        @click.argument("ref", metavar=resource.cli.upper())
        def delete_cmd(wait: bool, ref: str, parent_ref: str | None = None, **flags: Any) -> None:
            client = ApiClient()
            obj = client.find(resource, ref, parent_id(client, parent_ref))
            params = {k: "true" for k, v in flags.items() if v}
            client.call("DELETE", f"{path(client, parent_ref)}/{obj['id']}", params=params)
            if wait:
                wait_done(client, resource, f"{path(client, parent_ref)}/{obj['id']}", gone=True)

        for flag in resource.delete_flags:
            delete_cmd = click.option(f"--{flag}", is_flag=True, help=f"{flag} delete")(delete_cmd)

    if "status" in resource.extra:

        @group.command("status", help=f"Status of a {resource.cli} and what it holds.")
        @FORMAT
        @click.argument("ref", metavar=resource.cli.upper())
        def status_cmd(fmt: str, ref: str) -> None:
            client = ApiClient()
            obj = client.find(resource, ref)
            data = client.call("GET", f"{resource.path}/{obj['id']}/status")
            click.echo(json.dumps(data, indent=2)) if fmt == "json" else console.print_json(
                json.dumps(data)
            )

    if "stats" in resource.extra:

        @group.command("stats", help=f"Traffic statistics of a {resource.cli} (Octavia's).")
        @FORMAT
        @click.argument("ref", metavar=resource.cli.upper())
        def stats_cmd(fmt: str, ref: str) -> None:
            client = ApiClient()
            obj = client.find(resource, ref)
            output(client.call("GET", f"{resource.path}/{obj['id']}/stats")["stats"], fmt)

    if "routes" in resource.extra:

        @group.command(
            "routes",
            help=f"What the routers hold of a {resource.cli}'s addresses (BMP), per next hop.",
        )
        @FORMAT
        @click.argument("ref", metavar=resource.cli.upper())
        def routes_cmd(fmt: str, ref: str) -> None:
            client = ApiClient()
            obj = client.find(resource, ref)
            data = client.call("GET", f"{resource.path}/{obj['id']}/routes")["routes"]
            if fmt == "json":
                click.echo(json.dumps(data, indent=2))
                return
            rows = [
                {"address": a["address"], "router": r["router"], "next_hop": h["next_hop"],
                 "state": h["state"], "latency_ms": h["latency_ms"]}
                for a in data["addresses"] for r in a["routers"]
                for h in r["next_hops"] + [dict(u, latency_ms=None, state="unexpected "
                                                + u["state"]) for u in r["unexpected"]]
            ]  # fmt: skip
            output(rows, "table", ("address", "router", "next_hop", "state", "latency_ms"))

    if "failover" in resource.extra:

        @group.command("failover", help=f"Fail over a {resource.cli} (admin).")
        @click.argument("ref", metavar=resource.cli.upper())
        def failover_cmd(ref: str) -> None:
            client = ApiClient()
            obj = client.find(resource, ref)
            client.call("PUT", f"{resource.path}/{obj['id']}/failover", json={})

    if "reset" in resource.extra:

        @group.command(
            "reset",
            help="Reset an amphora host that holds no amphora (admin); it is AVAILABLE again "
            "once its agent answers clean.",
        )
        @FORMAT
        @click.argument("ref", metavar=resource.cli.upper())
        def reset_cmd(fmt: str, ref: str) -> None:
            client = ApiClient()
            obj = client.find(resource, ref)
            result = client.call("PUT", f"{resource.path}/{obj['id']}/reset", json={})
            output(result[resource.key], fmt)

    if "drain" in resource.extra:

        @group.command(
            "drain",
            help="Drain an amphora (admin): no new flows, its connections finish (or the drain "
            "timeout), then it is removed and the load balancer has one amphora less.",
        )
        @WAIT
        @click.argument("ref", metavar=resource.cli.upper())
        def drain_cmd(wait: bool, ref: str) -> None:
            client = ApiClient()
            obj = client.find(resource, ref)
            client.call("PUT", f"{resource.path}/{obj['id']}/drain", json={})
            if wait:
                lb = RESOURCES["loadbalancer"]
                wait_done(client, lb, f"{lb.path}/{obj['loadbalancer_id']}")

    for action in ("add-peer", "remove-peer"):
        if action not in resource.extra:
            continue

        def make(action: str) -> click.Command:
            @click.command(action, help=f"{action.replace('-', ' ').capitalize()} on a speaker.")
            @FORMAT
            @click.argument("ref", metavar="BGP-SPEAKER")
            @click.argument("peer", metavar="BGP-PEER")
            def peer_cmd(fmt: str, ref: str, peer: str) -> None:
                client = ApiClient()
                speaker = client.find(resource, ref)
                peer_id = client.find(RESOURCES["bgp-peer"], peer)["id"]
                verb = "add_bgp_peer" if action == "add-peer" else "remove_bgp_peer"
                result = client.call("PUT", f"{resource.path}/{speaker['id']}/{verb}",
                                     json={"bgp_peer_id": peer_id})  # fmt: skip
                output(result[resource.key], fmt)

            return peer_cmd

        group.add_command(make(action))
    return group


# VIP routes live under their distributor: ``l3dist distributor vip create DISTRIBUTOR ...``.
VIP_ROUTE = Resource(
    "vip", "/v2/lbaas/distributors/{parent}/vips", "vip", "vips",
    ("id", "name", "project_id", "vip_ip", "nexthop_ip", "peer_id", "provisioning_status",
     "operating_status"),
    (NAME, DESCRIPTION,
     Opt("--vip-ip", "vip_ip", required=True, help="anycast address to announce"),
     Opt("--nexthop-ip", "nexthop_ip", required=True,
         help="next hop on the front end (not an amphora), same IP family"),
     Opt("--peer", "peer_id", resolve="bgp-peer", help="one BGP peer (default: every peer)"),
     Opt("--project-id", "project_id")),
    parent="distributor", toggles=False, settable=False,
)  # fmt: skip

cli = click.Group("l3dist", help="l3dist API resources.")
for _resource in RESOURCES.values():
    cli.add_command(build_group(_resource))
_distributor_group = cli.commands["distributor"]
assert isinstance(_distributor_group, click.Group)
_distributor_group.add_command(build_group(VIP_ROUTE), "vip")
