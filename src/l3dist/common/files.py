"""Writing files so that readers never see half of one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str, mode: int = 0o600, durable: bool = False) -> None:
    """Write text to path through a temporary file and a rename.

    mode defaults to owner-only (configs here hold BGP passwords); durable also fsyncs the data
    before the rename, for state that must survive a crash of the whole machine.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    tmp.rename(path)
