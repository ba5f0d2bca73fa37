"""``l3dist bench api --json`` runs on both databases (small sizes; no timing asserts)."""

from __future__ import annotations

import json
import os
import subprocess

from .conftest import BIN


def test_bench_api_json() -> None:
    url = os.environ["L3DIST_TEST_POSTGRES_URL"]
    result = subprocess.run(
        [
            str(BIN / "l3dist"),
            "bench",
            "api",
            "--json",
            "--load-balancers",
            "300",
            "--requests",
            "10",
            "--seconds",
            "1",
            "--clients",
            "2",
            "--postgres-url",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for db in ("sqlite", "postgresql"):
        run = data[db]
        assert run["load_balancers"] == 300 and run["errors"] == 0
        for op in ("create", "show", "list_page_100"):
            assert 0 < run[op]["p50_ms"] <= run[op]["p99_ms"]
        assert run["show_requests_per_second"] > 0
    assert data["postgresql_to_sqlite_show_p50_ratio"] > 0
