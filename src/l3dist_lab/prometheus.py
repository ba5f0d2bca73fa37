"""A Prometheus server for the lab (Debian's ``prometheus``), standing in for the operator's:
it scrapes the control plane's processes (the API's ``/metrics``, the worker's, the health
manager's and the router view's ports) and every amphora agent (``https://<management
ip>:9443/metrics`` with the controller's client certificate, one job per agent: each has its
own name in its certificate), evaluates the alerting rules under ``contrib/``, and answers
PromQL over its HTTP API. Its process group and its data directory go with it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from l3dist.contracts.agent_api import AGENT_PORT
from l3dist_lab.controlplane import (
    METRICS_PORTS,
    ControlPlane,
    forget_processes,
    free_port,
    record_process,
)

RULES = Path(__file__).resolve().parents[2] / "contrib" / "prometheus" / "l3dist-alerts.yml"


def config_text(plane: ControlPlane, agents: list[tuple[str, str]], interval: float) -> str:
    """agents: (certificate name, management address)."""
    ca = plane.state_dir / "ca"
    jobs: list[dict[str, Any]] = [
        {"job_name": "l3dist-api",
         "static_configs": [{"targets": [plane.url.split("//", 1)[1]]}]},
        *({"job_name": f"l3dist-{name}",
           "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
          for name, port in METRICS_PORTS.items()),
    ]  # fmt: skip
    for name, address in agents:
        jobs.append({
            "job_name": f"l3dist-agent-{name}",
            "scheme": "https",
            "tls_config": {"ca_file": str(ca / "ca.pem"), "cert_file": str(ca / "controller.pem"),
                           "key_file": str(ca / "controller.pem"), "server_name": name},
            "static_configs": [{"targets": [f"{address}:{AGENT_PORT}"],
                                "labels": {"agent": name}}],
        })  # fmt: skip
    config = {
        "global": {
            "scrape_interval": f"{round(interval * 1000)}ms",
            "evaluation_interval": f"{round(interval * 1000)}ms",
        },
        "rule_files": [str(RULES)],
        "scrape_configs": jobs,
    }
    return json.dumps(config, indent=1)  # YAML is a superset of JSON


class Prometheus:
    def __init__(
        self, plane: ControlPlane, agents: list[tuple[str, str]], interval: float = 1.0
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="l3dist-prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.workdir / "prometheus.yml").write_text(config_text(plane, agents, interval))
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def start(self, timeout: float = 30) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
        with open(self.workdir / "prometheus.log", "ab") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={self.workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        record_process(self.proc.pid, binary)  # stopped by the next control plane if we die
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.http.get("/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"prometheus did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar as one sample) PromQL answers now; raises on an
        error (a query Prometheus cannot parse or evaluate)."""
        answer = self.http.get("/api/v1/query", params={"query": promql}).json()
        if answer.get("status") != "success":
            raise ValueError(f"{promql}: {answer.get('error')}")
        data = answer["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def value(self, promql: str) -> float | None:
        """The single value PromQL answers now; None when the answer is empty."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) != 1:
            raise ValueError(f"{promql}: {len(result)} series, wanted one")
        return float(result[0]["value"][1])

    def targets_up(self) -> dict[str, bool]:
        data = self.http.get("/api/v1/targets").json()["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] == "up" for t in data}

    def alerts(self) -> dict[str, str]:
        """Alert name -> state (pending, firing) of the alerts active now."""
        data = self.http.get("/api/v1/alerts").json()["data"]["alerts"]
        return {a["labels"]["alertname"]: a["state"] for a in data}

    def rules_healthy(self) -> dict[str, str]:
        groups = self.http.get("/api/v1/rules").json()["data"]["groups"]
        return {r["name"]: r["health"] for g in groups for r in g["rules"]}

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "prometheus.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            forget_processes({self.proc.pid})
        self.http.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Prometheus:
        try:
            self.start()
        except BaseException:
            self.stop()  # its process and data directory, even when it did not start
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
