"""What an amphora's config drive says about heartbeats, from the controller's configuration."""

from __future__ import annotations

from pydantic import SecretStr

from l3dist.common.config import Config, heartbeat_key
from l3dist.contracts.agent_config import HeartbeatConfig


def heartbeat_settings(config: Config) -> HeartbeatConfig:
    return HeartbeatConfig(
        controllers=config.health.controller_ip_port_list,
        key=SecretStr(heartbeat_key(config).decode()),
        interval=config.health.heartbeat_interval,
    )
