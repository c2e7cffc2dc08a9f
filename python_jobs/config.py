"""Connection settings from the environment, the one story for dbt, Python, R and Tableau.

PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE mean what they mean to psql. When PGHOST is
unset (the embedded server then listens on PGPORT, default 54329), or names this machine's
loopback on port 54329, the project's own embedded PostgreSQL is used and started on demand;
anything else is an external server that the project never starts or stops.

The embedded server asks every connection for a password (scram-sha-256). Its passwords live in
a libpq password file, $WAREHOUSE_DIR/credentials (default .warehouse/credentials, mode 600,
written by `python -m python_jobs.warehouse up`). settings() points PGPASSFILE at that file when
the embedded server is used and neither PGPASSWORD nor PGPASSFILE is set, so this process and
every subprocess it starts (dbt, Rscript, psql, python -m python_jobs.X) find the password the
way libpq always does; a user's PGPASSWORD still wins.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_HOST = "127.0.0.1"
EMBEDDED_PORT = 54329
EMBEDDED_USER = "warehouse"
DEFAULT_DATABASE = "warehouse"
REPORTING_ROLE = "reporter"
STATE_DIR = Path(os.environ.get("WAREHOUSE_DIR") or ROOT / ".warehouse")
PASSFILE = STATE_DIR / "credentials"


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    user: str
    password: str | None
    database: str
    embedded: bool

    def dsn(self, database: str | None = None) -> dict:
        params = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": database or self.database,
            "application_name": "python_jobs",
        }
        if self.password:
            params["password"] = self.password
        return params

    def __repr__(self) -> str:  # never print the password
        return (f"Settings(host={self.host!r}, port={self.port}, user={self.user!r}, "
                f"database={self.database!r}, embedded={self.embedded})")


def settings(database: str | None = None) -> Settings:
    env = os.environ
    host = env.get("PGHOST") or ""
    port = int(env.get("PGPORT") or EMBEDDED_PORT)
    embedded = not host or (host in (EMBEDDED_HOST, "localhost") and port == EMBEDDED_PORT)
    if embedded:
        export_passfile()
    return Settings(
        host=host or EMBEDDED_HOST,
        port=port,
        embedded=embedded,
        user=env.get("PGUSER") or EMBEDDED_USER,
        password=env.get("PGPASSWORD") or None,
        database=database or env.get("PGDATABASE") or DEFAULT_DATABASE,
    )


def export_passfile() -> None:
    """PGPASSFILE=<the embedded server's password file> unless the user gave PGPASSWORD or
    their own PGPASSFILE. Also run at start-up of every Python in .venv (a .pth file written by
    `make setup`), so a bare `dbt build` finds the password too."""
    if not os.environ.get("PGPASSWORD") and not os.environ.get("PGPASSFILE"):
        os.environ["PGPASSFILE"] = str(PASSFILE)


def export_passfile_if_embedded() -> None:
    """export_passfile() when the PG* variables point at the embedded server (the .pth hook:
    runs before every program in .venv, so it must never raise)."""
    with contextlib.suppress(ValueError):  # a malformed PGPORT is the program's to report
        settings()


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", help="database name (default: $PGDATABASE or warehouse)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING")
