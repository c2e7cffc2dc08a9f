"""Start, stop and report the embedded PostgreSQL; create the raw schema and reporting role.

    python -m python_jobs.warehouse up|down|status|env|init|summary

The server itself (where it lives, passwords, running as a system user under root) is
python_jobs.server, below python_jobs.db, which starts it on connect; this module is above
db: it creates the raw schema and the reporting role, and counts rows.
"""

from __future__ import annotations

import argparse
import logging
import sys

from python_jobs import config, contract, credentials, db, logs
from python_jobs.server import down, env_lines, running, set_role_password, status_line, up

log = logging.getLogger(__name__)


def init(database: str | None = None) -> None:
    """Create the raw schema, its tables and the read-only reporting role; upgrade an older
    database's batch registry in place (contract.UPGRADE_DDL). Idempotent."""
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
    role = config.REPORTING_ROLE
    password = credentials.reporting_password()
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
        set_role_password(conn, role, password)


SUMMARY_SCHEMAS = ("raw", "staging", "intermediate", "marts", "ml", "ab")


def summary(database: str | None = None) -> str:
    """Row counts of every table the pipeline built, schema by schema."""
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
    parser.add_argument("action", choices=["up", "down", "status", "env", "init", "summary"])
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
    elif args.action == "env":
        print(env_lines())
    elif args.action == "summary":
        print(summary(args.database))
    else:
        init(args.database)
        print(f"raw schema and reporting role ready in {config.settings(args.database)!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
