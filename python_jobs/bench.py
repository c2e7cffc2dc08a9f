"""Benchmark the pipeline stage by stage: rows, wall seconds, rows per second, peak memory.

    python -m python_jobs.bench --sessions 1000000 [--seed 42] [--database bench]
                                [--duckdb] [--spark]
    python -m python_jobs.bench --sessions 1000000 --spark-only   # Spark on the same data
    python -m python_jobs.bench --sessions 2000 --collector   # + the HTTP collector, last

Each stage runs as its own process (the commands a user runs), so its peak RSS is that
process's own. dbt stages do their work inside PostgreSQL (or DuckDB, in dbt's process):
their RSS is dbt's, the server's memory is not counted.

Before the full build the oldest week and the newest full day of events are held back
through the batch registry (python_jobs.holdback). After the full build and the tests, the
oldest week comes back and a plain `dbt run` takes it in (the backfill stage); then the
newest day comes back and `dbt run` takes it in (the incremental stage, what a daily run
does), and `dbt test` tests what it rebuilt. With --duckdb the same project is built from
scratch on DuckDB right after the PostgreSQL full build, from the same raw data (its Parquet
export), so the two full builds are side by side in one run. The Spark stage's peak RSS is
the Python process's; the JVM it starts is bounded by spark.driver.memory instead.

The database (default `bench`) is dropped and made anew first: a scratch database, never
the one PGDATABASE names. Results are printed and written as JSON after every stage
(default bench/results.json): the stages, every model's time, the commit, the machine, the
load average, and a `summary` (postgres_full_seconds, duckdb_full_seconds, full_ratio =
Postgres / DuckDB, incremental_seconds, incremental_ratio = incremental / Postgres full,
test_seconds, backfill_seconds, incremental_test_seconds = the `dbt test` after the daily
run; null where a stage did not run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import psutil

from python_jobs import config, db, duckdb, holdback, logs, warehouse

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
    # The machine's 1-minute load average as the stage ended (its own work included): on a
    # shared machine, how much else ran beside it.
    load_average: float | None = None


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
    load_average = round(os.getloadavg()[0], 2)
    rows = count_rows()
    return Stage(name, rows, round(seconds, 2), round(rows / seconds, 1) if seconds else 0.0,
                 round(usage.ru_maxrss / 1024, 1), _slowest_models(target_path), load_average)


def _count(database: str, query: str) -> Callable[[], int]:
    def count() -> int:
        with db.connect(database) as conn:
            return int(db.read_sql(conn, query).iloc[0, 0])
    return count


# Stage names the summary reads.
FULL = "dbt run (full refresh)"
TEST = "dbt test"
BACKFILL = "dbt run (backfill: oldest week)"
INCREMENTAL = "dbt run (incremental +1 day)"
DAILY_TEST = "dbt test (after the daily run)"
DUCKDB_LOAD = "duckdb: export+register"
DUCKDB_SEED = "duckdb: dbt seed"
DUCKDB_FULL = "duckdb: dbt run (full refresh)"
BACKFILL_DAYS = 7


def summary(stages: list[Stage]) -> dict[str, float | None]:
    """The figures a script checks: seconds of the main stages and the two ratios."""
    seconds = {s.name: s.seconds for s in stages}

    def ratio(a: float | None, b: float | None, digits: int) -> float | None:
        return round(a / b, digits) if a is not None and b else None

    full, duck = seconds.get(FULL), seconds.get(DUCKDB_FULL)
    incremental = seconds.get(INCREMENTAL)
    return {"postgres_full_seconds": full, "duckdb_full_seconds": duck,
            "full_ratio": ratio(full, duck, 2),
            "incremental_seconds": incremental,
            "incremental_ratio": ratio(incremental, full, 3),
            "test_seconds": seconds.get(TEST), "backfill_seconds": seconds.get(BACKFILL),
            "incremental_test_seconds": seconds.get(DAILY_TEST)}


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines
                if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "cpu": cpu,
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


def commit() -> str | None:
    """The checked-out commit (with '+dirty' when tracked files differ), None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=config.ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=config.ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def print_table(stages: list[Stage]) -> None:
    print(f"{'stage':<34}{'rows':>14}{'seconds':>10}{'rows/s':>14}{'peak MB':>10}"
          f"{'load':>7}")
    for s in stages:
        load = "" if s.load_average is None else f"{s.load_average:.1f}"
        print(f"{s.name:<34}{s.rows:>14,}{s.seconds:>10.1f}{s.rows_per_second:>14,.0f}"
              f"{s.peak_rss_mb:>10.0f}{load:>7}")
    for s in stages:
        if s.slowest_models:
            print(f"slowest models in {s.name}: "
                  + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in s.slowest_models[:12]))


def print_summary(figures: dict[str, float | None]) -> None:
    """PostgreSQL and DuckDB side by side, and the incremental run against the full build."""
    full, duck = figures["postgres_full_seconds"], figures["duckdb_full_seconds"]
    if full is None:
        return
    print()
    if duck is not None:
        print(f"{'':<34}{'PostgreSQL':>12}{'DuckDB':>12}{'ratio':>9}")
        print(f"{'dbt run --full-refresh':<34}{full:>11.1f}s{duck:>11.1f}s"
              f"{figures['full_ratio']:>8.2f}x")
    else:
        print(f"dbt run --full-refresh (PostgreSQL): {full:.1f} s (DuckDB: run with --duckdb)")
    if figures["incremental_seconds"] is not None:
        print(f"incremental run after one new day: {figures['incremental_seconds']:.1f} s, "
              f"{figures['incremental_ratio']:.1%} of the full build")
    if figures["backfill_seconds"] is not None:
        print(f"backfill run after the oldest week arrives: {figures['backfill_seconds']:.1f} s")
    if figures["test_seconds"] is not None:
        print(f"dbt test: {figures['test_seconds']:.1f} s")
    if figures["incremental_test_seconds"] is not None:
        print(f"dbt test after the daily run (rebuilt days only): "
              f"{figures['incremental_test_seconds']:.1f} s")


def _oldest_day(database: str) -> date:
    with db.connect(database) as conn:
        day = db.read_sql(conn, "select min(cast(started_at as date)) as d "
                                "from raw.listening_events").iloc[0]["d"]
    if day is None:
        raise SystemExit(f"{database}: raw.listening_events is empty")
    return day


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", type=Path, default=config.ROOT / "bench" / "results.json")
    parser.add_argument("--duckdb", action="store_true",
                        help="add the DuckDB stages: the same models built from scratch on "
                             "DuckDB from the same raw data, after the PostgreSQL full build")
    parser.add_argument("--spark", action="store_true",
                        help="add the Spark stage: the same models built on local Spark")
    parser.add_argument("--collector", action="store_true",
                        help="add the collector stage at the end: events/s, ack latency "
                             "and event-to-fct_plays seconds (docs/collector.md)")
    parser.add_argument("--collector-events", type=int, default=100_000,
                        help="events of the collector's flood")
    # The goal's 20,000 and 5 %: counting the last answers, an achieved rate clears 20,000
    # only when the offered one is a little above.
    parser.add_argument("--collector-rate", type=float, default=21_000,
                        help="events per second of the collector's steady run (10 s)")
    parser.add_argument("--collector-workers", type=int,
                        help="collector processes (default: serve's)")
    parser.add_argument("--spark-only", action="store_true",
                        help="only the Spark stage, on the database an earlier run filled; "
                             "its figures join that run's results file")
    parser.add_argument("--collector-only", action="store_true",
                        help="only the collector stage, likewise")
    config.add_common_args(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    database = args.database or "bench"
    env = {**os.environ, "PGDATABASE": database,
           "DBT_TARGET_PATH": str(config.ROOT / "target" / "bench")}
    python = sys.executable
    plays = _count(database, "select count(*) from raw.listening_events")
    mart_plays = _count(database, "select count(*) from marts.fct_plays")
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    about = {"commit": commit(), "machine": machine(), "started_at": started_at,
             "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}

    def record(stage: Stage) -> None:
        # Written after every stage, so a stage that fails or is stopped keeps the others.
        stages[:] = [s for s in stages if s.name != stage.name] + [stage]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({
            "sessions": args.sessions, "seed": args.seed, "cores": os.cpu_count(),
            **about, "summary": summary(stages),
            "stages": [asdict(s) for s in stages]}, indent=2) + "\n")

    stages: list[Stage] = []
    if args.spark_only or args.collector_only:
        if args.output.exists():
            previous = json.loads(args.output.read_text())
            about = {k: previous.get(k, v) for k, v in about.items()}
            stages = [Stage(**{**s, "slowest_models": tuple(map(tuple, s["slowest_models"]))})
                      for s in previous["stages"]]
        if args.collector_only:
            record(run_collector_stage(database, env, args, about))
    else:
        # A scratch database, made anew: every run does the same work (a previous run's ml
        # tables would make the scoring mart score every play in the full build).
        if database == config.settings().database:
            raise SystemExit(f"refusing to drop {database}, the configured warehouse "
                             "database: give the benchmark a scratch --database")
        db.drop_database(database)
        warehouse.init(database)
        record(run_stage("generate+load", [python, "-m", "python_jobs.generate", "--sessions",
                                           str(args.sessions), "--seed", str(args.seed),
                                           "--database", database], env, plays))
        # Through the batch registry, so the incremental models see both days arrive later.
        # The newest full day and any partial day after it (up to today; rows dated in the
        # future stay, as they would in a daily load).
        newest = holdback.newest_full_day(database)
        oldest = _oldest_day(database)
        held_old = holdback.hold_back(database, oldest, oldest + timedelta(BACKFILL_DAYS - 1))
        held_new = holdback.hold_back(database, newest, date.today())
        log.info("held back %d events of %s..%s (backfill) and %d of %s on (incremental)",
                 held_old, oldest, oldest + timedelta(BACKFILL_DAYS - 1), held_new, newest)
        record(run_stage("dbt seed", [DBT, "seed", "--quiet"], env,
                         _count(database, "select count(*) from seeds.countries")))
        dbt_run = [DBT, "run", "--quiet"]
        record(run_stage(FULL, [*dbt_run, "--full-refresh"], env, mart_plays))
        if args.duckdb:
            run_duckdb_stages(database, env, record, plays)
        dbt_test = [DBT, "test", "--quiet", "--exclude-resource-type", "unit_test"]
        record(run_stage(TEST, dbt_test, env, mart_plays))
        # restore() brings back everything held; the newest day goes straight back out (the
        # build never had it, so that is no change to the models' data).
        holdback.restore(database)
        holdback.hold_back(database, newest, date.today())
        record(run_stage(BACKFILL, dbt_run, env, lambda: held_old))
        holdback.restore(database)
        record(run_stage(INCREMENTAL, dbt_run, env, lambda: held_new))
        # the daily run's tests: those of incremental models read the days it rebuilt
        # (docs/incremental.md, "Tests only where data changed")
        record(run_stage(DAILY_TEST, dbt_test, env, mart_plays))
        record(run_stage("ab analyze --all", [python, "-m", "python_jobs.ab", "analyze",
                                              "--all", "--database", database], env,
                         _count(database, "select count(*) from "
                                          "marts.fct_experiment_user_metrics")))
        record(run_stage("train (skip + duration)", [python, "-m", "python_jobs.train",
                                                     "--database", database], env,
                         # the two runs it wrote (ml.latest_* are dbt views, not built here)
                         _count(database, "select sum(train_rows + test_rows) from (select "
                                          "train_rows, test_rows from ml.model_runs order "
                                          "by trained_at desc limit 2) as latest")))

        if args.collector:
            record(run_collector_stage(database, env, args, about))

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
          f"commit {about['commit']}, {os.cpu_count()} cores, load average at start "
          f"{about['load_average_at_start'][0]:.1f}")
    print_table(stages)
    print_summary(summary(stages))
    if "collector" in about:
        print(f"collector: {json.dumps(about['collector'])}")
    print(f"written: {args.output}")
    return 0


def run_collector_stage(database: str, env: dict[str, str], args: argparse.Namespace,
                        about: dict) -> Stage:
    """HTTP collector flood with the build loop running; its figures go to the results'
    `collector` entry (python_jobs.collect.bench)."""
    from python_jobs.collect import bench as collector

    figures = collector.measure(database, env, events=args.collector_events,
                                sessions=args.sessions, seed=args.seed,
                                rate=args.collector_rate, workers=args.collector_workers)
    # Its own commit and load: with --collector-only the rest of the results is older.
    about["collector"] = {**figures, "commit": commit(),
                          "load_average_at_end": round(os.getloadavg()[0], 2)}
    return Stage("collector: HTTP -> raw", figures["acked_events"], figures["seconds"],
                 figures["events_per_second"] or 0.0, figures["collector_peak_rss_mb"],
                 load_average=round(os.getloadavg()[0], 2))


def run_duckdb_stages(database: str, env: dict[str, str], record: Callable[[Stage], None],
                      plays: Callable[[], int]) -> None:
    """The same models from scratch on DuckDB, from the raw data the PostgreSQL full build
    just read: export + views (and the registry), seed, dbt run --full-refresh."""
    path = config.ROOT / "output" / "duckdb-bench" / f"{database}.duckdb"
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)  # a clean build, as Postgres' full refresh
    target = str(config.ROOT / "target" / "bench-duckdb")
    duck_env = {**duckdb.dbt_env(database, path), "DBT_TARGET_PATH": target}
    record(run_stage(DUCKDB_LOAD, [sys.executable, "-m", "python_jobs.duckdb", "--database",
                                   database, "--path", str(path), "load"], duck_env, plays))
    duck = ["--target", "duckdb"]
    record(run_stage(DUCKDB_SEED, [DBT, "seed", "--quiet", *duck], duck_env,
                     lambda: duckdb.count(path, "select count(*) from seeds.countries")))
    record(run_stage(DUCKDB_FULL, [DBT, "run", "--quiet", "--full-refresh", *duck], duck_env,
                     lambda: duckdb.count(path, "select count(*) from marts.fct_plays")))


if __name__ == "__main__":
    sys.exit(main())
