"""A small built warehouse for the consumers (workbook, R scripts, HTML report) and their tests.

    python -m python_jobs.report_demo --database con_demo [--sessions 3000] [--seed 1]

Fills one database end to end: generate raw data, `dbt build` without tests (seeds and models
only: the consumers need the tables, the dbt tests have their own runs), `ab analyze --all`,
and `python -m python_jobs.train` when that module exists. The consumer tests share one such
database per pytest session through `shared()`.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import psycopg2
from psycopg2 import sql

from python_jobs import config, db, generate, logs, warehouse

log = logging.getLogger(__name__)

DEFAULT_SESSIONS = 3000
DEFAULT_SEED = 1


def has_train() -> bool:
    """The training job (schema ml) is part of this checkout."""
    return importlib.util.find_spec("python_jobs.train.__main__") is not None


def drop(database: str) -> None:
    conn = psycopg2.connect(**config.settings().dsn("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("drop database if exists {} with (force)").format(
                sql.Identifier(database)))
    finally:
        conn.close()


def _dbt(database: str, work: Path, *args: str) -> None:
    env = {**os.environ, "PGDATABASE": database, "DBT_TARGET_PATH": str(work / "target"),
           "DBT_LOG_PATH": str(work / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = config.ROOT / ".venv" / "bin" / "dbt"
    result = subprocess.run([str(dbt), *args], cwd=config.ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed:\n{result.stdout[-4000:]}")


def build(database: str, sessions: int = DEFAULT_SESSIONS, seed: int = DEFAULT_SEED,
          work: Path | None = None, train: bool = True) -> dict:
    """Recreate `database` and fill it; returns what was built."""
    work = work or Path(tempfile.mkdtemp(prefix="report_demo_"))
    db.ensure_database(config.settings(database))
    drop(database)
    warehouse.init(database)
    if generate.main(["--sessions", str(sessions), "--seed", str(seed), "--database", database,
                      "--log-level", "WARNING"]) != 0:
        raise RuntimeError("generate failed")
    _dbt(database, work, "build", "--exclude-resource-type", "test",
         "--exclude-resource-type", "unit_test")
    from python_jobs.ab import __main__ as ab_cli

    if ab_cli.main(["analyze", "--all", "--database", database, "--report",
                    str(work / "ab"), "--log-level", "WARNING"]) != 0:
        raise RuntimeError("ab analyze failed")
    trained = False
    if train and has_train():
        from python_jobs.train import __main__ as train_cli

        trained = train_cli.main(["--database", database, "--log-level", "WARNING"]) == 0
        if not trained:
            log.warning("python -m python_jobs.train failed; the report shows no model run")
    return {"database": database, "sessions": sessions, "seed": seed, "trained": trained}


def shared(base_temp: Path, name: str | None = None) -> dict:
    """One built database per pytest session (base_temp = tmp_path_factory.getbasetemp()):
    the first caller builds it, later callers of the same session reuse it."""
    database = name or os.environ.get("TEST_DATABASE_PREFIX", "test_") + "consumers"
    marker = base_temp / f"{database}.built"
    if marker.exists():
        trained = marker.read_text().strip() == "trained"
        return {"database": database, "trained": trained}
    work = base_temp / f"{database}_build"
    work.mkdir(exist_ok=True)
    built = build(database, work=work)
    marker.write_text("trained" if built["trained"] else "untrained")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config.add_common_args(parser)
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--no-train", action="store_true", help="skip python_jobs.train")
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    database = args.database or config.settings().database
    built = build(database, args.sessions, args.seed, train=not args.no_train)
    log.info("built %s", built)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
