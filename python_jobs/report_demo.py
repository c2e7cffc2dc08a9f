"""A small built warehouse for the consumers (workbook, R scripts, HTML report) and their tests.

    python -m python_jobs.report_demo --database con_demo [--sessions 3000] [--seed 1]

Fills one database end to end: generate raw data, `dbt build` without tests (seeds and models
only: the consumers need the tables, the dbt tests have their own runs), `ab analyze --all`,
`python -m python_jobs.train`, then `dbt build --selector ml_scoring` (the ml.latest_* views).
The consumer tests share one such
database per pytest session through `shared()`.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path

from python_jobs import config, db, dbt_cli, generate, logs, warehouse

log = logging.getLogger(__name__)

DEFAULT_SESSIONS = 3000
DEFAULT_SEED = 1


def build(database: str, sessions: int = DEFAULT_SESSIONS, seed: int = DEFAULT_SEED,
          work: Path | None = None) -> dict:
    """Recreate `database` and fill it; returns what was built."""
    work = work or Path(tempfile.mkdtemp(prefix="report_demo_"))
    db.drop_database(database)
    warehouse.init(database)
    if generate.main(["--sessions", str(sessions), "--seed", str(seed), "--database", database,
                      "--log-level", "WARNING"]) != 0:
        raise RuntimeError("generate failed")
    dbt_cli.run(database, work, "build", "--exclude-resource-type", "test",
                "--exclude-resource-type", "unit_test")
    from python_jobs.ab import __main__ as ab_cli

    if ab_cli.main(["analyze", "--all", "--database", database, "--report",
                    str(work / "ab"), "--log-level", "WARNING"]) != 0:
        raise RuntimeError("ab analyze failed")
    from python_jobs.train import __main__ as train_cli

    if train_cli.main(["--database", database, "--log-level", "WARNING"]) != 0:
        raise RuntimeError("python -m python_jobs.train failed")
    # the ml.latest_* views and the SQL scores, as `make demo` builds them after training
    dbt_cli.run(database, work, "build", "--selector", "ml_scoring",
                "--exclude-resource-type", "test")
    return {"database": database, "sessions": sessions, "seed": seed}


def shared(base_temp: Path, name: str | None = None) -> dict:
    """One built database per pytest session (base_temp = tmp_path_factory.getbasetemp()):
    the first caller builds it, later callers of the same session reuse it."""
    database = name or os.environ.get("TEST_DATABASE_PREFIX", "test_") + "consumers"
    marker = base_temp / f"{database}.built"
    if marker.exists():
        return {"database": database}
    work = base_temp / f"{database}_build"
    work.mkdir(exist_ok=True)
    built = build(database, work=work)
    marker.touch()
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config.add_common_args(parser)
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    database = args.database or config.settings().database
    built = build(database, args.sessions, args.seed)
    log.info("built %s", built)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
