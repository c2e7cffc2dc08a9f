"""Benchmark the pipeline stage by stage: rows, wall seconds, rows per second, peak memory.

    python -m python_jobs.bench --sessions 1000000 [--seed 42] [--database bench] [--spark]
    python -m python_jobs.bench --sessions 1000000 --spark-only   # Spark on the same data

Each stage runs as its own process (the commands a user runs), so its peak RSS is that
process's own. dbt stages do their work inside PostgreSQL: their RSS is dbt's, the server's
memory is not counted. The incremental stage holds back the last day of events, builds, puts
the day back and runs dbt again, which is what a daily run does.
The Spark stage's peak RSS is the Python process's; the JVM it starts is bounded by
spark.driver.memory instead. Results are printed and written as JSON after every stage
(default bench/results.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from python_jobs import config, db, holdback, logs

log = logging.getLogger(__name__)

DBT = str(Path(sys.executable).with_name("dbt"))


@dataclass(frozen=True)
class Stage:
    name: str
    rows: int
    seconds: float
    rows_per_second: float
    peak_rss_mb: float
    slowest_models: tuple[tuple[str, float], ...] = ()  # every model of a dbt stage


def _slowest_models(target_path: Path) -> tuple[tuple[str, float], ...]:
    """A dbt stage's models, slowest first, from its run_results.json."""
    results = target_path / "run_results.json"
    if not results.exists():
        return ()
    nodes = json.loads(results.read_text())["results"]
    timed = sorted(((r["unique_id"].split(".")[-1], round(r["execution_time"], 1))
                    for r in nodes if r["unique_id"].startswith("model.")),
                   key=lambda item: -item[1])
    return tuple(timed)


def run_stage(name: str, command: list[str], env: dict[str, str],
              count_rows: Callable[[], int]) -> Stage:
    log.info("stage %s: %s", name, " ".join(command))
    target_path = Path(env["DBT_TARGET_PATH"])
    (target_path / "run_results.json").unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=config.ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"stage {name} failed with exit code {proc.returncode}")
    rows = count_rows()
    return Stage(name, rows, round(seconds, 2), round(rows / seconds, 1) if seconds else 0.0,
                 round(usage.ru_maxrss / 1024, 1), _slowest_models(target_path))


def _count(database: str, query: str) -> Callable[[], int]:
    def count() -> int:
        with db.connect(database) as conn:
            return int(db.read_sql(conn, query).iloc[0, 0])
    return count


def print_table(stages: list[Stage]) -> None:
    print(f"{'stage':<32}{'rows':>14}{'seconds':>10}{'rows/s':>14}{'peak MB':>10}")
    for s in stages:
        print(f"{s.name:<32}{s.rows:>14,}{s.seconds:>10.1f}{s.rows_per_second:>14,.0f}"
              f"{s.peak_rss_mb:>10.0f}")
    for s in stages:
        if s.slowest_models:
            print(f"slowest models in {s.name}: "
                  + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in s.slowest_models[:12]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=config.ROOT / "bench" / "results.json")
    parser.add_argument("--spark", action="store_true",
                        help="add the Spark stage: the same models built on local Spark")
    parser.add_argument("--spark-only", action="store_true",
                        help="only the Spark stage, on the database an earlier run filled; "
                             "its figures join that run's results file")
    config.add_common_args(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    database = args.database or "bench"
    env = {**os.environ, "PGDATABASE": database,
           "DBT_TARGET_PATH": str(config.ROOT / "target" / "bench")}
    python = sys.executable
    plays = _count(database, "select count(*) from raw.listening_events")
    mart_plays = _count(database, "select count(*) from marts.fct_plays")

    def record(stage: Stage) -> None:
        # Written after every stage, so a stage that fails or is stopped keeps the others.
        stages[:] = [s for s in stages if s.name != stage.name] + [stage]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({
            "sessions": args.sessions, "seed": args.seed, "cores": os.cpu_count(),
            "stages": [asdict(s) for s in stages]}, indent=2) + "\n")

    stages: list[Stage] = []
    if args.spark_only:
        if args.output.exists():
            stages = [Stage(**{**s, "slowest_models": tuple(map(tuple, s["slowest_models"]))})
                      for s in json.loads(args.output.read_text())["stages"]]
    else:
        record(run_stage("generate+load", [python, "-m", "python_jobs.generate", "--sessions",
                                           str(args.sessions), "--seed", str(args.seed),
                                           "--database", database], env, plays))
        # the newest full day and any partial day after it, through the batch registry
        held = holdback.hold_back(database, holdback.newest_full_day(database), date.today())
        log.info("held back %d events of the last day for the incremental stage", held)
        record(run_stage("dbt seed", [DBT, "seed", "--quiet"], env,
                         _count(database, "select count(*) from seeds.countries")))
        dbt_run = [DBT, "run", "--quiet"]
        record(run_stage("dbt run (full refresh)", [*dbt_run, "--full-refresh"], env,
                         mart_plays))
        record(run_stage("dbt test", [DBT, "test", "--quiet", "--exclude-resource-type",
                                      "unit_test"], env, mart_plays))
        holdback.restore(database)
        record(run_stage("dbt run (incremental +1 day)", dbt_run, env, lambda: held))
        record(run_stage("ab analyze --all", [python, "-m", "python_jobs.ab", "analyze",
                                              "--all", "--database", database], env,
                         _count(database, "select count(*) from "
                                          "marts.fct_experiment_user_metrics")))
        record(run_stage("train (skip + duration)", [python, "-m", "python_jobs.train",
                                                     "--database", database], env,
                         _count(database, "select sum(train_rows + test_rows) "
                                          "from ml.latest_model_runs")))

    if args.spark or args.spark_only:
        # Models only, as the Postgres "dbt run" stage: export + register + build, one
        # process, on a metastore and warehouse of its own (a clean full build).
        state = config.ROOT / "output" / "spark-bench"
        shutil.rmtree(state, ignore_errors=True)
        target = str(config.ROOT / "target" / "bench-spark")
        record(run_stage(
            "spark: export+register+dbt run",
            [python, "-m", "python_jobs.spark", "--database", database, "build",
             "--target-path", target, "--",
             "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
            {**env, "DBT_TARGET_PATH": target, "SPARK_STATE_DIR": str(state)}, plays))

    print(f"benchmark: {args.sessions:,} sessions, seed {args.seed}, database {database}, "
          f"{os.cpu_count()} cores")
    print_table(stages)
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
