"""Run the amphora agent: ``python -m l3dist.amphora_agent --config CONFIG_DRIVE_FILE``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from l3dist.amphora_agent.api import create_app
from l3dist.amphora_agent.service import AgentService
from l3dist.certificates import server_context_args
from l3dist.contracts import agent_config


def main() -> None:
    parser = argparse.ArgumentParser(description="l3dist amphora agent")
    parser.add_argument("--config", type=Path, required=True, help="config drive file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = agent_config.load(args.config)
    service = AgentService(cfg)
    uvicorn.run(
        create_app(service),
        host=cfg.bind_host,
        port=cfg.bind_port,
        log_level="warning",
        timeout_graceful_shutdown=5,
        # Mutual TLS: only clients with a certificate from the controller's CA get an answer.
        **server_context_args(cfg.tls.client_ca, cfg.tls.server_pem),  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
