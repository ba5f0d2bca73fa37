"""What ``contrib/`` ships for operators: the alerting rules pass ``promtool check rules``
(Debian's prometheus), and every metric the rules and the Grafana dashboard use is one that
l3dist exports (its name in the code, without the ``_bucket``/``_count``/``_total`` suffixes
the exposition adds)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "contrib" / "prometheus" / "l3dist-alerts.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "l3dist-dashboard.json"
METRIC = re.compile(r"\b(l3dist_[a-z0-9_]+)")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def exported() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "src" / "l3dist").rglob("*.py"))


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_promtool_accepts_the_alerting_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool (apt-get install prometheus) is part of the test command"
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_the_rules_and_the_dashboard_use_only_metrics_l3dist_exports() -> None:
    code = exported()
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) == len(dashboard["panels"]) >= 15
    used = {base_name(m) for text in [RULES.read_text(), *exprs] for m in METRIC.findall(text)}
    missing = sorted(name for name in used if f'"{name}' not in code)
    assert not missing, f"not exported by l3dist: {missing}"
