"""The amphora agent's command, ``l3dist-agent``.

- ``l3dist-agent --config CONFIG_DRIVE_FILE`` runs the agent of an amphora whose compute driver
  wrote its config drive (``python -m l3dist.amphora_agent`` does the same).
- ``l3dist-agent enroll --config /etc/l3dist/agent.toml --token TOKEN [--controller URL]``
  joins a host to the controller's amphora host pool (see ``enroll``).
- ``l3dist-agent run [--config /etc/l3dist/agent.toml]`` runs the agent of an enrolled host:
  idle until the controller assigns it an amphora (see ``host``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from l3dist.contracts import agent_config, host_config

# Seconds an idle controller connection stays open: past the controller's client pool expiry
# (httpx: 5 s), so the controller never sends on a connection the agent is closing.
AGENT_KEEP_ALIVE = 30


def run(argv: list[str]) -> None:
    import uvicorn

    from l3dist.amphora_agent.api import create_app
    from l3dist.amphora_agent.service import AgentService
    from l3dist.certificates import server_context_args

    parser = argparse.ArgumentParser(prog="l3dist-agent", description="l3dist amphora agent")
    parser.add_argument("--config", type=Path, required=True, help="config drive file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = agent_config.load(args.config)
    service = AgentService(cfg)
    uvicorn.run(
        create_app(service),
        host=cfg.bind_host,
        port=cfg.bind_port,
        log_level="warning",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=AGENT_KEEP_ALIVE,
        # Mutual TLS: only clients with a certificate from the controller's CA get an answer.
        **server_context_args(cfg.tls.client_ca, cfg.tls.server_pem, cfg.tls.server_key),  # type: ignore[arg-type]
    )


def run_host(argv: list[str]) -> int:
    import uvicorn

    from l3dist.amphora_agent.api import create_app
    from l3dist.amphora_agent.host import HostAgent, NotEnrolled
    from l3dist.certificates import server_context_args

    parser = argparse.ArgumentParser(
        prog="l3dist-agent run", description="run the agent of an enrolled amphora host"
    )
    parser.add_argument("--config", type=Path, default=host_config.DEFAULT_PATH)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = host_config.load(args.config)
        host = HostAgent(cfg)
    except (OSError, ValueError, NotEnrolled) as exc:
        print(f"l3dist-agent: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(host),
        host=str(cfg.management.address),
        port=cfg.bind_port,
        log_level="warning",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=AGENT_KEEP_ALIVE,
        # Mutual TLS with the certificate of the enrollment: only the controller is answered.
        **server_context_args(cfg.ca_path, cfg.cert_path, cfg.key_path),  # type: ignore[arg-type]
    )
    return 0


def enroll(argv: list[str]) -> int:
    from l3dist.amphora_agent.enroll import EnrollmentRefused
    from l3dist.amphora_agent.enroll import enroll as enroll_host

    parser = argparse.ArgumentParser(
        prog="l3dist-agent enroll", description="join the controller's amphora host pool"
    )
    parser.add_argument("--config", type=Path, default=host_config.DEFAULT_PATH)
    parser.add_argument("--token", required=True, help="the one-time enrollment token")
    parser.add_argument("--controller", help="the REST API's URL (default: controller_url)")
    args = parser.parse_args(argv)
    try:
        cfg = host_config.load(args.config)
    except (OSError, ValueError) as exc:
        print(f"l3dist-agent: cannot read {args.config}: {exc}", file=sys.stderr)
        return 2
    if args.controller:
        cfg = cfg.model_copy(update={"controller_url": args.controller})
    try:
        answer = enroll_host(cfg, args.token)
    except EnrollmentRefused as exc:
        print(f"l3dist-agent: {exc}", file=sys.stderr)
        return 1
    print(f"enrolled as amphora host {answer.host_id}; certificate in {cfg.cert_path}")
    return 0


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["enroll"]:
        sys.exit(enroll(argv[1:]))
    if argv[:1] == ["run"]:
        sys.exit(run_host(argv[1:]))
    run(argv)


if __name__ == "__main__":
    main()
