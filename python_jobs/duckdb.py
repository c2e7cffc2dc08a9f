"""The DuckDB target: the same dbt project on DuckDB, raw read from the Spark target's Parquet.

    python -m python_jobs.duckdb load     --database D [--raw-dir DIR]  # export + register
    python -m python_jobs.duckdb register --raw-dir DIR                 # Parquet -> views raw.*
    python -m python_jobs.duckdb build    --database D [-- DBT ARGS]    # load, seed, dbt build
    python -m python_jobs.duckdb compare  --database D                  # marts: Postgres == DuckDB?

One DuckDB file per warehouse database (default output/duckdb/<database>.duckdb, or
$DUCKDB_PATH), the same file `dbt --target duckdb` opens (profiles.yml). Raw stays in
PostgreSQL, where the loaders write it; `python_jobs.spark.export` carries it to Parquet and
`register` puts a view per raw table over those files, typed as the raw contract types them.
DuckDB cannot download its postgres extension here, and Parquet is what the Spark target
reads too. DuckDB allows one writing process per file: do not run two of these (or dbt on
the duckdb target) on the same file at once. See docs/duckdb.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

from python_jobs import config, contract, db, logs, spark

log = logging.getLogger(__name__)

DBT = str(Path(sys.executable).with_name("dbt"))
RAW_SCHEMA = "raw"
REGISTRY = "load_changes"
DEFAULT_DIR = config.ROOT / "output" / "duckdb"  # output/ is git-ignored
DEFAULT_TARGET_PATH = config.ROOT / "target" / "duckdb"
NO_TESTS = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]

# Raw contract type -> DuckDB type of the view's column (the Postgres raw table's type).
_TYPES = {"text": "varchar", "bigint": "bigint", "integer": "integer", "double": "double",
          "boolean": "boolean", "date": "date", "timestamp": "timestamp"}


def database_path(database: str | None = None) -> Path:
    """The DuckDB file of a warehouse database; profiles.yml's duckdb output names the same
    file when dbt runs in the repo root with the same PGDATABASE (tested)."""
    if os.environ.get("DUCKDB_PATH"):
        return Path(os.environ["DUCKDB_PATH"]).resolve()
    return DEFAULT_DIR / f"{config.settings(database).database}.duckdb"


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("set TimeZone = 'UTC'")  # as the profile sets it (ICU loads on first use)
    return con


# --------------------------------------------------------------------------- register


def view_sql(table: contract.Table, raw_dir: Path) -> str:
    """A view over one table's Parquet folder with the raw contract's columns and types.
    The files' timestamps are UTC instants (timestamptz to DuckDB); the view gives them back
    as the naive UTC timestamps of the Postgres raw tables, whatever the session time zone.
    Day folders (hive partitions) are not columns of the raw table and stay out."""
    columns = []
    for name, type_ in spark.file_columns(table):
        value = f"timezone('UTC', {name})" if type_ == "timestamp" else name
        columns.append(f"cast({value} as {_TYPES[type_]}) as {name}")
    folder = (raw_dir / table.name).resolve()
    if any(folder.rglob("*.parquet")):
        source = (f"read_parquet('{folder}/**/*.parquet', hive_partitioning = false, "
                  "union_by_name = true)")
        where = ""
    else:  # an empty table exports no file; the view still has its columns
        source = "(select 1)"
        columns = [f"cast(null as {_TYPES[type_]}) as {name}"
                   for name, type_ in spark.file_columns(table)]
        where = " where false"
    return (f"create or replace view {RAW_SCHEMA}.{table.name} as select "
            f"{', '.join(columns)} from {source}{where}")


def register(path: Path, raw_dir: Path) -> dict[str, int]:
    """(Re)create schema raw in the DuckDB file with one view per contract table."""
    counts = {}
    with connect(path) as con:
        con.execute(f"create schema if not exists {RAW_SCHEMA}")
        for table in contract.TABLES.values():
            if not (raw_dir / table.name).is_dir():  # the export makes one even when empty
                raise SystemExit(f"{raw_dir / table.name} is missing: run `python -m "
                                 "python_jobs.duckdb load` (or python_jobs.spark export)")
            con.execute(view_sql(table, raw_dir))
            counts[table.name] = con.execute(
                f"select count(*) from {RAW_SCHEMA}.{table.name}").fetchone()[0]
            log.info("registered %s.%s: %d rows", RAW_SCHEMA, table.name, counts[table.name])
    return counts


# Postgres column types of the batch registry -> DuckDB's spelling where it differs.
_PG_TYPES = {"text": "varchar", "timestamp without time zone": "timestamp"}


def copy_registry(database: str | None, path: Path) -> int:
    """Copy raw.load_changes, the batch registry's change log that the incremental models
    read to find the days to rebuild (docs/incremental.md), into the DuckDB file as a table,
    taken with the export so both describe the same raw data. Returns its rows; -1 when the
    warehouse has no registry (the incremental models then rebuild everything)."""
    with db.connect(database) as conn:
        types = db.read_sql(conn, """
            select column_name, data_type from information_schema.columns
            where table_schema = %s and table_name = %s order by ordinal_position""",
            (contract.RAW_SCHEMA, REGISTRY))
        if types.empty:
            return -1
        frame = db.read_sql(conn, f"select * from {contract.RAW_SCHEMA}.{REGISTRY}")
    columns = ", ".join(f"cast({name} as {_PG_TYPES.get(type_, type_)}) as {name}"
                        for name, type_ in zip(types["column_name"], types["data_type"],
                                               strict=True))
    with connect(path) as con:
        con.execute(f"create schema if not exists {RAW_SCHEMA}")
        con.register("registry_frame", frame)
        con.execute(f"create or replace table {RAW_SCHEMA}.{REGISTRY} as "
                    f"select {columns} from registry_frame")
    return len(frame)


def load(database: str | None, raw_dir: Path, path: Path) -> dict[str, int]:
    """Raw from PostgreSQL to Parquet (the Spark target's export) and into the DuckDB file,
    with the batch registry's change log."""
    counts = spark.export(database, raw_dir)
    register(path, raw_dir)
    changes = copy_registry(database, path)
    log.info("copied %s.%s: %d rows", RAW_SCHEMA, REGISTRY, changes)
    return counts


# --------------------------------------------------------------------------- dbt


def dbt_env(database: str | None, path: Path) -> dict[str, str]:
    """Environment for `dbt --target duckdb` on this database's file."""
    return {**os.environ, "PGDATABASE": config.settings(database).database,
            "DUCKDB_PATH": str(path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def dbt(args: list[str], database: str | None, path: Path,
        target_path: Path = DEFAULT_TARGET_PATH) -> int:
    """`dbt ARGS --target duckdb` in a subprocess, its output on this process's."""
    command = [DBT, *args, "--target", "duckdb", "--target-path", str(target_path)]
    log.info("%s", " ".join(command))
    return subprocess.run(command, cwd=config.ROOT, env=dbt_env(database, path),
                          check=False).returncode


# --------------------------------------------------------------------------- compare


def count(path: Path, query: str) -> int:
    """One number from the DuckDB file (read-only: dbt may not hold it meanwhile)."""
    with connect(path, read_only=True) as con:
        return int(con.execute(query).fetchone()[0])


def read_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> pd.DataFrame:
    """Through Arrow, as the Spark side reads: nulls as NaN/None, not pandas' NA types."""
    return con.sql(f'select * from {schema}."{name}"').to_arrow_table().to_pandas()


def tables(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ?",
        [schema]).fetchall()}


def compare(database: str | None, path: Path, manifest_path: Path,
            marts: list[str] | None = None, schema: str = spark.MARTS_SCHEMA) -> list[dict]:
    """Every dbt model of `schema` on Postgres and DuckDB: same rows, keys, values (1e-9),
    with the Spark comparison's rules (python_jobs.spark.compare_tables)."""
    with connect(path, read_only=True) as con:
        return spark.compare_tables(database, tables(con, schema),
                                    lambda name: read_table(con, schema, name),
                                    manifest_path, marts, schema, engine="duckdb")


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.duckdb",
                                     description=__doc__.splitlines()[0])
    config.add_common_args(parser)
    parser.add_argument("--path", help="DuckDB file (default $DUCKDB_PATH or "
                                       f"{DEFAULT_DIR}/<database>.duckdb)")
    sub = parser.add_subparsers(dest="action", required=True)
    p_load = sub.add_parser("load", help="raw tables: Postgres -> Parquet -> DuckDB views")
    p_register = sub.add_parser("register", help="Parquet folders as DuckDB views raw.*")
    p_build = sub.add_parser("build", help="load + dbt seed + dbt build --target duckdb")
    p_build.add_argument("dbt_args", nargs=argparse.REMAINDER,
                         help="after --: extra dbt build arguments")
    p_compare = sub.add_parser("compare", help="every mart: Postgres vs DuckDB")
    p_compare.add_argument("--marts", help="comma-separated marts to compare (default: all)")
    p_compare.add_argument("--schema", default=spark.MARTS_SCHEMA,
                           help="layer to compare (default marts; intermediate works too)")
    for p in (p_load, p_register, p_build):
        p.add_argument("--raw-dir", help="the Parquet export's folder (default "
                                         f"{spark.DEFAULT_RAW_ROOT}/<database>)")
    for p in (p_build, p_compare):
        p.add_argument("--target-path", default=str(DEFAULT_TARGET_PATH),
                       help="dbt target dir of the DuckDB build (manifest.json for keys)")
    for p in (p_load, p_register, p_build, p_compare):  # also accepted after the action
        p.add_argument("--database", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--path", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    path = Path(args.path).resolve() if args.path else database_path(args.database)
    raw_dir = (Path(args.raw_dir) if getattr(args, "raw_dir", None)
               else spark.DEFAULT_RAW_ROOT / config.settings(args.database).database)

    if args.action in ("load", "register"):
        started = time.perf_counter()
        counts = (load(args.database, raw_dir, path) if args.action == "load"
                  else register(path, raw_dir))
        print(f"{sum(counts.values())} raw rows of {len(counts)} tables as views over "
              f"{raw_dir} in {path} in {time.perf_counter() - started:.1f} s")
        return 0
    if args.action == "build":
        dbt_args = [a for a in args.dbt_args if a != "--"]
        target_path = Path(args.target_path)
        timings = {}
        started = time.perf_counter()
        counts = load(args.database, raw_dir, path)
        timings["load"] = time.perf_counter() - started
        for step, command in (("dbt seed", ["seed"]), ("dbt build", ["build", *dbt_args])):
            started = time.perf_counter()
            code = dbt(command, args.database, path, target_path)
            timings[step] = time.perf_counter() - started
            if code != 0:
                print(f"{step} failed (exit {code})", file=sys.stderr)
                return 1
        print(f"raw rows: {sum(counts.values())} ({counts.get('listening_events', 0)} "
              f"listening events) in {path}")
        for step, seconds in timings.items():
            print(f"{step:<10} {seconds:7.1f} s")
        print(f"{'total':<10} {sum(timings.values()):7.1f} s")
        return 0
    marts = [m.strip() for m in args.marts.split(",")] if args.marts else None
    results = compare(args.database, path, Path(args.target_path) / "manifest.json", marts,
                      args.schema)
    print(spark.format_results(results, "duckdb"))
    bad = [r for r in results if r["status"] != "ok"]
    print(f"{len(results) - len(bad)} of {len(results)} marts identical")
    return 1 if bad or not results else 0


if __name__ == "__main__":
    raise SystemExit(main())
