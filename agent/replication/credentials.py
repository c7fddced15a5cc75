"""Credentials kept by add_node's retain_authorization: a local file, never a replicated row.

`<rootPath>/keys/retained-authorization.json` (mode 0600) maps a peer URL to the
Authorization header this node sends when it dials that peer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from agent import jsonx

FILE = "retained-authorization.json"


def load(root: Path) -> dict[str, str]:
    path = Path(root) / "keys" / FILE
    try:
        data = jsonx.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def save(root: Path, retained: dict[str, str]) -> None:
    """Write the map atomically with mode 0600."""
    folder = Path(root) / "keys"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".retained.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(jsonx.dumps(retained))
        os.replace(tmp, folder / FILE)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
