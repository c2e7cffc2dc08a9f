"""Logging set-up shared by every command."""

from __future__ import annotations

import logging
import sys
from types import TracebackType


def setup(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    # a command that cannot reach the database says so in one line; DEBUG keeps the traceback
    debug = level.upper() == "DEBUG"
    sys.excepthook = sys.__excepthook__ if debug else _database_error_in_one_line


def _database_error_in_one_line(kind: type[BaseException], error: BaseException,
                                trace: TracebackType | None) -> None:
    import psycopg2  # here: every command imports this module, not all of them a database

    if not isinstance(error, psycopg2.OperationalError):
        sys.__excepthook__(kind, error, trace)
        return
    lines = str(error).strip().splitlines()
    print(f"error: database: {lines[0] if lines else kind.__name__} (connection settings: "
          "PGHOST, PGPORT, PGUSER, PGPASSWORD or PGPASSFILE; --log-level DEBUG for the "
          "traceback)", file=sys.stderr)


def show_progress() -> bool:
    """tqdm bars only on an interactive terminal, so CI logs stay readable."""
    return sys.stderr.isatty()
