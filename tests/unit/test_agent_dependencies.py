"""An amphora host installs ``l3dist`` without the ``controller`` extra: the agent's command,
its API, host mode, enrollment and both speaker drivers load none of the extra's libraries
(checked in a fresh interpreter, at run time), and the packaging says so."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata

# The controller extra's distributions, by the top-level module each one installs.
CONTROLLER_ONLY = {
    "typer": "typer",
    "rich": "rich",
    "sqlalchemy": "sqlalchemy",
    "alembic": "alembic",
    "psycopg": "psycopg",
    "taskflow": "taskflow",
}
AGENT_MODULES = [
    "l3dist.amphora_agent.__main__",
    "l3dist.amphora_agent.api",
    "l3dist.amphora_agent.host",
    "l3dist.amphora_agent.service",
    "l3dist.amphora_agent.enroll",
    "l3dist.certificates",  # imported by `run` and `run_host` when they start
    "l3dist.bgp.bird",
    "l3dist.bgp.exabgp",
]


def test_the_agent_loads_nothing_of_the_controller_extra() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {AGENT_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", script], check=True,
                                           capture_output=True, text=True).stdout))  # fmt: skip
    assert "l3dist" in loaded and "fastapi" in loaded, "the check saw the agent load"
    # rich only through httpx's optional command-line entry, which imports it when present.
    assert loaded & (set(CONTROLLER_ONLY.values()) - {"rich"}) == set()


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!\[;]", requirement, maxsplit=1)[0].lower()


def test_the_controller_libraries_are_only_in_the_controller_extra() -> None:
    requirements = metadata.requires("l3dist") or []
    base = {_name(r) for r in requirements if "extra ==" not in r}
    extra = {_name(r) for r in requirements if re.search(r"extra\s*==\s*['\"]controller", r)}
    assert base & set(CONTROLLER_ONLY) == set(), base
    assert set(CONTROLLER_ONLY) <= extra, extra
    # prometheus-client too: the agent serves its own metrics (GET /metrics).
    assert {"fastapi", "pyroute2", "exabgp", "cryptography", "prometheus-client"} <= base


def test_the_l3dist_command_without_the_extra_says_what_to_install() -> None:
    """On an amphora host (no controller extra) ``l3dist`` explains itself: run here with the
    extra's first import made to fail."""
    script = (
        "import sys\n"
        "class Missing:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'typer':\n"
        "            raise ModuleNotFoundError('No module named typer', name='typer')\n"
        "sys.meta_path.insert(0, Missing())\n"
        "from l3dist.console import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "pip install 'l3dist[controller]'" in result.stderr
    assert "missing typer" in result.stderr
