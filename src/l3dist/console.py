"""The ``l3dist`` console script's entry: a host installed without the ``controller`` extra
(an amphora host: only ``l3dist-agent``) gets a clear message instead of a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from l3dist.cli import main as run
    except ModuleNotFoundError as exc:
        print(f"l3dist: the control plane's commands need the controller extra (missing "
              f"{exc.name}): pip install 'l3dist[controller]'", file=sys.stderr)  # fmt: skip
        sys.exit(2)
    run()
