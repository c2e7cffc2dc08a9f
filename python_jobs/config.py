"""Connection settings from the environment, the one story for dbt, Python, R and Tableau.

PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE mean what they mean to psql. When PGHOST is
unset (the embedded server then listens on PGPORT, default 54329), or names this machine's
loopback on port 54329, the project's own embedded PostgreSQL is used and started on demand;
anything else is an external server that the project never starts or stops.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_HOST = "127.0.0.1"
EMBEDDED_PORT = 54329
EMBEDDED_USER = "warehouse"
DEFAULT_DATABASE = "warehouse"
REPORTING_ROLE = "reporter"


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
    return Settings(
        host=host or EMBEDDED_HOST,
        port=port,
        embedded=not host or (host in (EMBEDDED_HOST, "localhost") and port == EMBEDDED_PORT),
        user=env.get("PGUSER") or EMBEDDED_USER,
        password=env.get("PGPASSWORD") or None,
        database=database or env.get("PGDATABASE") or DEFAULT_DATABASE,
    )


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", help="database name (default: $PGDATABASE or warehouse)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING")
