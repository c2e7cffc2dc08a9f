"""The collector's bearer token: $WAREHOUSE_COLLECTOR_TOKEN, else a private file.

The file is $WAREHOUSE_DIR/collector-token (beside the embedded server's credentials file,
mode 600, made by the first `collect serve` with 256 random bits), so the server and the
clients of this machine share it without the token ever being in a command line.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from python_jobs import config

ENV = "WAREHOUSE_COLLECTOR_TOKEN"
PATH = config.STATE_DIR / "collector-token"


def read(path: Path = PATH) -> str | None:
    """The token clients send: the environment's, else the file's, else None."""
    if os.environ.get(ENV):
        return os.environ[ENV]
    return path.read_text().strip() or None if path.exists() else None


def ensure(path: Path = PATH) -> str:
    """The token the server checks; makes the private file when there is no token yet."""
    given = read(path)
    if given:
        return given
    path.parent.mkdir(parents=True, exist_ok=True)
    made = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server made it first: use that one
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(made + "\n")
    return made
