"""The Spark target: raw tables as Parquet, registered in Spark, dbt built there, compared.

    python -m python_jobs.spark export   --database D --out DIR   # raw tables -> Parquet
    python -m python_jobs.spark register --raw-dir DIR            # Parquet -> Spark db `raw`
    python -m python_jobs.spark build    --database D [-- DBT ARGS]  # all three, timed
    python -m python_jobs.spark compare  --database D             # marts: Postgres == Spark?

Spark runs in this process (pyspark, `local[2]`), started exactly as dbt-spark's `session`
method starts it (`SparkSession.builder.enableHiveSupport()` plus the profile's
`server_side_parameters`), so this module and `dbt --target spark` share one metastore: Derby
in $SPARK_STATE_DIR/metastore_db, tables in $SPARK_STATE_DIR/spark-warehouse (default: the
repo root). Derby allows one JVM at a time, so `build` runs dbt in this process (dbtRunner)
on the session `register` started, and a separate `dbt --target spark` must not run meanwhile.
See docs/spark.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from python_jobs import config, contract, db, logs
from python_jobs.spark_session import missing, session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

RAW_DATABASE = "raw"
MARTS_SCHEMA = "marts"
DEFAULT_RAW_ROOT = config.ROOT / "output" / "spark-raw"  # output/ is git-ignored
DEFAULT_TARGET_PATH = config.ROOT / "target" / "spark"  # dbt's target dir for Spark builds
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_FLOOR = 1e-12  # sums in another order may leave 1e-17 where the other engine has 0

# Contract type -> (Arrow type in the Parquet files, Spark SQL type of the table).
_TYPES = {
    "text": (pa.string(), "string"),
    "bigint": (pa.int64(), "bigint"),
    "integer": (pa.int32(), "int"),
    "double": (pa.float64(), "double"),
    "boolean": (pa.bool_(), "boolean"),
    "date": (pa.date32(), "date"),
    # Parquet timestamps are written adjusted to UTC, which Spark reads as TIMESTAMP (its
    # local-time type); with spark.sql.session.timeZone=UTC it shows the same wall-clock
    # values as Postgres' timestamp without time zone. Naive Parquet timestamps would come
    # back as TIMESTAMP_NTZ, a different type from what the models cast to.
    "timestamp": (pa.timestamp("us", tz="UTC"), "timestamp"),
}


# --------------------------------------------------------------------------- export


def partition_name(table: contract.Table) -> str | None:
    """started_at -> started_date: the day folder of a partitioned table."""
    if table.partition_column is None:
        return None
    return table.partition_column.removesuffix("_at") + "_date"


def file_columns(table: contract.Table) -> list[tuple[str, str]]:
    """(name, contract type) of every column in the Parquet files, audit columns included."""
    return [(c.name, c.type) for c in table.columns] + list(contract.AUDIT_COLUMNS)


def arrow_schema(table: contract.Table) -> pa.Schema:
    fields = [pa.field(name, _TYPES[type_][0]) for name, type_ in file_columns(table)]
    part = partition_name(table)
    if part:
        fields.append(pa.field(part, pa.date32()))
    return pa.schema(fields)


def _copy_batches(conn: db.Connection, query: str,
                  columns: list[tuple[str, str]]) -> Iterator[pa.RecordBatch]:
    """Stream a query's rows as Arrow batches: COPY ... TO STDOUT (CSV) into a pipe that
    pyarrow parses as it arrives, so memory stays bounded and no Python tuple is built."""
    read_fd, write_fd = os.pipe()
    source = os.fdopen(read_fd, "rb")
    sink = os.fdopen(write_fd, "wb")
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            with conn.cursor() as cur:
                cur.copy_expert(f"copy ({query}) to stdout with (format csv)", sink)
        except BaseException as exc:  # handed to the consumer below
            errors.append(exc)
        finally:
            sink.close()

    thread = threading.Thread(target=produce, name="copy-out", daemon=True)
    thread.start()
    try:
        if source.peek(1):  # pyarrow refuses an empty CSV stream
            # Timestamps are parsed naive (Postgres prints them without zone) and tagged UTC
            # below; Postgres CSV: unquoted empty = NULL, quoted "" = empty string.
            types = {name: pa.timestamp("us") if t == "timestamp" else _TYPES[t][0]
                     for name, t in columns}
            reader = pacsv.open_csv(
                source,
                read_options=pacsv.ReadOptions(column_names=[n for n, _ in columns],
                                               block_size=16 << 20),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, null_values=[""], strings_can_be_null=True,
                    quoted_strings_can_be_null=False, true_values=["t"], false_values=["f"]),
            )
            yield from reader
    finally:
        source.close()
        thread.join()
    if errors:
        raise errors[0]


def _to_contract(batch: pa.RecordBatch, table: contract.Table) -> pa.RecordBatch:
    """Tag timestamps UTC and add the day partition column."""
    arrays, names = [], []
    for (name, type_), array in zip(file_columns(table), batch.columns, strict=True):
        arrays.append(array.cast(_TYPES[type_][0]) if type_ == "timestamp" else array)
        names.append(name)
    part = partition_name(table)
    if part:
        arrays.append(pc.cast(batch.column(table.partition_column), pa.date32()))
        names.append(part)
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(table))


def export_table(conn: db.Connection, table: contract.Table, out: Path) -> int:
    """Write raw.<table> to out/<table>/ as Parquet (day folders for partitioned tables)."""
    target = out / table.name
    if target.exists():
        shutil.rmtree(target)  # a rerun replaces the export, stale days included
    target.mkdir(parents=True)
    cols = ", ".join(name for name, _ in file_columns(table))
    order = f" order by {table.partition_column}" if table.partition_column else ""
    query = f"select {cols} from {contract.RAW_SCHEMA}.{table.name}{order}"
    rows = 0

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for batch in _copy_batches(conn, query, file_columns(table)):
            rows += batch.num_rows
            yield _to_contract(batch, table)

    schema = arrow_schema(table)
    part = partition_name(table)
    partitioning = (ds.partitioning(pa.schema([schema.field(part)]), flavor="hive")
                    if part else None)
    ds.write_dataset(
        batches(), target, schema=schema, format="parquet", partitioning=partitioning,
        basename_template="part-{i}.parquet", existing_data_behavior="overwrite_or_ignore",
        min_rows_per_group=64_000, max_rows_per_group=1_000_000, max_open_files=1024,
    )
    return rows


def export(database: str | None, out: Path) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    with db.connect(database) as conn:
        db.execute(conn, "set datestyle = 'ISO, YMD'")  # what the CSV parser expects
        for table in contract.TABLES.values():
            counts[table.name] = export_table(conn, table, out)
            log.info("exported raw.%s: %d rows", table.name, counts[table.name])
    return counts


# --------------------------------------------------------------------------- register


def create_table_sql(table: contract.Table, location: Path) -> str:
    part = partition_name(table)
    cols = [f"`{name}` {_TYPES[type_][1]}" for name, type_ in file_columns(table)]
    if part:
        cols.append(f"`{part}` date")
    partitioned = f" partitioned by (`{part}`)" if part else ""
    return (f"create table {RAW_DATABASE}.{table.name} ({', '.join(cols)}) using parquet"
            f"{partitioned} location '{location.resolve().as_uri()}'")


def register(spark: SparkSession, raw_dir: Path) -> dict[str, int]:
    """(Re)create database `raw` with one external Parquet table per contract table."""
    spark.sql(f"create database if not exists {RAW_DATABASE}")
    counts = {}
    for table in contract.TABLES.values():
        location = raw_dir / table.name
        if not location.is_dir():
            raise SystemExit(f"{location} is missing: run `python -m python_jobs.spark export`")
        # External table: dropping it forgets the registration and keeps the files.
        spark.sql(f"drop table if exists {RAW_DATABASE}.{table.name}")
        spark.sql(create_table_sql(table, location))
        if partition_name(table):
            spark.sql(f"msck repair table {RAW_DATABASE}.{table.name}")
        counts[table.name] = spark.table(f"{RAW_DATABASE}.{table.name}").count()
        log.info("registered %s.%s: %d rows", RAW_DATABASE, table.name, counts[table.name])
    return counts


# --------------------------------------------------------------------------- dbt


def dbt_build(dbt_args: list[str], target_path: Path, project_dir: Path = config.ROOT,
              command: str = "build") -> bool:
    """dbt build (or another `command`, e.g. run) --target spark in this process, so it uses
    the session (and the Derby lock) this process already holds."""
    from dbt.cli.main import dbtRunner

    args = [command, "--target", "spark", "--project-dir", str(project_dir),
            "--profiles-dir", str(project_dir), "--target-path", str(target_path),
            *dbt_args]
    log.info("dbt %s", " ".join(args))
    result = dbtRunner().invoke(args)
    if result.exception is not None:  # e.g. a bad option: dbt printed nothing about it
        log.error("dbt %s failed: %s", command, result.exception)
    return bool(result.success)


# --------------------------------------------------------------------------- compare


def mart_keys(manifest_path: Path, schema: str = MARTS_SCHEMA) -> dict[str, list[str]]:
    """Each mart's grain from the dbt manifest: meta.grain, else its
    unique_combination_of_columns test, else a column with a unique test."""
    manifest = json.loads(manifest_path.read_text())
    models = {uid: node for uid, node in manifest["nodes"].items()
              if node["resource_type"] == "model" and node.get("schema") == schema}
    found: dict[str, tuple[int, list[str]]] = {}

    def offer(uid: str, rank: int, key: list[str]) -> None:
        if uid in models and (uid not in found or rank < found[uid][0]):
            found[uid] = (rank, key)

    for uid, node in models.items():
        grain = (node.get("config", {}).get("meta") or node.get("meta") or {}).get("grain")
        if grain:
            offer(uid, 0, list(grain))
    for node in manifest["nodes"].values():
        meta = node.get("test_metadata") or {}
        uid = node.get("attached_node") or next(iter(node.get("depends_on", {})
                                                     .get("nodes", [])), None)
        if node["resource_type"] != "test" or not uid:
            continue
        kwargs = meta.get("kwargs", {})
        if meta.get("name") == "unique_combination_of_columns":
            offer(uid, 1, list(kwargs["combination_of_columns"]))
        elif meta.get("name") == "unique" and kwargs.get("column_name"):
            offer(uid, 2, [kwargs["column_name"]])
    return {models[uid]["alias"] or models[uid]["name"]: key
            for uid, (_, key) in found.items()}


def models(manifest_path: Path, schema: str) -> list[str]:
    """The relations dbt builds in `schema` (ephemeral models are none)."""
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return sorted(n["alias"] or n["name"] for n in nodes
                  if n["resource_type"] == "model" and n["schema"] == schema
                  and n["config"].get("materialized") != "ephemeral")


def _is_number(values: pd.Series) -> bool:
    """Numbers in any form: numpy dtypes, or objects (psycopg2 returns numeric as Decimal)."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    sample = values.dropna()
    return not sample.empty and bool(sample.map(
        lambda v: isinstance(v, int | float | np.number | Decimal) and not isinstance(v, bool)
    ).all())


def _normalise(values: pd.Series) -> pd.Series:
    """One representation per kind, whichever engine and driver produced it."""
    if _is_number(values):
        return pd.to_numeric(values.map(lambda v: None if v is None else float(v)),
                             errors="raise").astype("float64")
    sample = values.dropna()
    if pd.api.types.is_datetime64_any_dtype(values) or (
            not sample.empty and sample.map(lambda v: hasattr(v, "year")).all()):
        out = pd.to_datetime(values)
        return out.dt.tz_localize(None) if out.dt.tz is not None else out
    return values.astype("object").where(values.notna(), None)


def _equal(left: pd.Series, right: pd.Series) -> pd.Series:
    """Element-wise equality: numbers within the tolerance, the rest exactly, null == null."""
    both_null = left.isna().to_numpy() & right.isna().to_numpy()
    if left.dtype == "float64" and right.dtype == "float64":
        a, b = left.to_numpy(), right.to_numpy()
        scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), ABSOLUTE_FLOOR / RELATIVE_TOLERANCE)
        with np.errstate(invalid="ignore"):
            close = np.abs(a - b) <= RELATIVE_TOLERANCE * scale
        return pd.Series(both_null | np.nan_to_num(close, nan=False).astype(bool),
                         index=left.index)
    same = (left.astype("object") == right.astype("object")).fillna(False).to_numpy(bool)
    return pd.Series(both_null | same, index=left.index)


def compare_frames(pg: pd.DataFrame, sp: pd.DataFrame, key: list[str] | None,
                   engine: str = "spark") -> list[str]:
    """Differences between one mart on Postgres (pg) and another engine (sp; `engine` names
    it in the messages). Empty list: identical."""
    problems = []
    if set(pg.columns) != set(sp.columns):
        problems.append(f"columns only in postgres {sorted(set(pg.columns) - set(sp.columns))}"
                        f", only in {engine} {sorted(set(sp.columns) - set(pg.columns))}")
    columns = [c for c in pg.columns if c in sp.columns]
    pg = pd.DataFrame({c: _normalise(pg[c]) for c in columns})
    sp = pd.DataFrame({c: _normalise(sp[c]) for c in columns})
    if len(pg) != len(sp):
        problems.append(f"rows {len(pg)} vs {len(sp)}")
    if key and all(k in columns for k in key):
        pg_keys = set(map(tuple, pg[key].astype("object").to_numpy()))
        sp_keys = set(map(tuple, sp[key].astype("object").to_numpy()))
        if pg_keys != sp_keys:
            problems.append(f"keys: {len(pg_keys - sp_keys)} only in postgres (e.g. "
                            f"{sorted(pg_keys - sp_keys, key=str)[:3]}), "
                            f"{len(sp_keys - pg_keys)} only in {engine} (e.g. "
                            f"{sorted(sp_keys - pg_keys, key=str)[:3]})")
        joined = pg.merge(sp, on=key, how="inner", suffixes=("_pg", "_sp"))
    else:
        if len(pg) != len(sp):
            return problems
        order = columns
        pg = pg.sort_values(order, na_position="first", kind="stable").reset_index(drop=True)
        sp = sp.sort_values(order, na_position="first", kind="stable").reset_index(drop=True)
        joined = pg.add_suffix("_pg").join(sp.add_suffix("_sp"))
        key = []
    for column in columns:
        if column in key:
            continue
        ok = _equal(joined[f"{column}_pg"], joined[f"{column}_sp"])
        if not ok.all():
            bad = joined.loc[~ok, [*key, f"{column}_pg", f"{column}_sp"]].head(3)
            problems.append(f"{column}: {int((~ok).sum())} differ, e.g. "
                            f"{bad.to_dict('records')}")
    return problems


def compare(database: str | None, spark: SparkSession, manifest_path: Path,
            marts: list[str] | None = None, schema: str = MARTS_SCHEMA) -> list[dict]:
    """One result row per dbt model of `schema` (without a manifest: per table found on
    either engine; or per mart named in `marts`). Another layer's schema (intermediate)
    compares the same way, views included."""
    spark_marts = ({r.tableName for r in spark.sql(f"show tables in {schema}").collect()
                    if not r.isTemporary}
                   if spark.catalog.databaseExists(schema) else set())
    return compare_tables(database, spark_marts,
                          lambda mart: spark.table(f"{schema}.{mart}").toPandas(),
                          manifest_path, marts, schema)


def compare_tables(database: str | None, other_marts: set[str],
                   read_other: Callable[[str], pd.DataFrame], manifest_path: Path,
                   marts: list[str] | None = None, schema: str = MARTS_SCHEMA,
                   engine: str = "spark") -> list[dict]:
    """compare's engine-neutral part: `other_marts` are the tables of `schema` on the other
    engine, `read_other(name)` reads one of them whole (python_jobs.duckdb uses it too).
    With a manifest and no `marts`, the schema's dbt models are compared: tables that are no
    model, such as the incremental models' watermarks (a row per run on each engine), not."""
    keys = mart_keys(manifest_path, schema) if manifest_path.exists() else {}
    if marts is None and manifest_path.exists():
        marts = models(manifest_path, schema)
    results = []
    with db.connect(database) as conn:
        pg_marts = set(db.read_sql(
            conn, "select table_name from information_schema.tables where table_schema = %s",
            (schema,))["table_name"])
        for mart in sorted(marts or (pg_marts | other_marts)):
            row = {"mart": mart, "key": ", ".join(keys.get(mart, [])) or "(all columns)",
                   "postgres_rows": None, f"{engine}_rows": None}
            if mart not in other_marts and mart not in pg_marts:
                continue  # built on neither: not selected (the ML wing before training)
            if mart not in other_marts or mart not in pg_marts:
                row["status"] = f"only in {'postgres' if mart in pg_marts else engine}"
                results.append(row)
                continue
            pg = db.read_sql(conn, f'select * from {schema}."{mart}"')
            other = read_other(mart)
            row["postgres_rows"], row[f"{engine}_rows"] = len(pg), len(other)
            problems = compare_frames(pg, other, keys.get(mart), engine)
            row["status"] = "ok" if not problems else "MISMATCH: " + "; ".join(problems)
            results.append(row)
    return results


def format_results(results: list[dict], engine: str = "spark") -> str:
    lines = [f"{'mart':<28} {'key':<44} {'postgres':>9} {engine:>9}  status"]
    for r in results:
        def n(v: int | None) -> str:
            return "-" if v is None else str(v)
        lines.append(f"{r['mart']:<28} {r['key']:<44} {n(r['postgres_rows']):>9} "
                     f"{n(r[f'{engine}_rows']):>9}  {r['status']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def _raw_dir(args: argparse.Namespace) -> Path:
    if getattr(args, "raw_dir", None):
        return Path(args.raw_dir)
    return DEFAULT_RAW_ROOT / config.settings(args.database).database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.spark",
                                     description=__doc__.splitlines()[0])
    config.add_common_args(parser)
    sub = parser.add_subparsers(dest="action", required=True)
    p_export = sub.add_parser("export", help="raw tables from Postgres to Parquet")
    p_export.add_argument("--out", help=f"folder (default {DEFAULT_RAW_ROOT}/<database>)")
    p_register = sub.add_parser("register", help="Parquet folders as Spark database raw")
    p_register.add_argument("--raw-dir", help="the export's folder")
    p_build = sub.add_parser("build", help="export + register + dbt build --target spark")
    p_build.add_argument("--raw-dir", help="export folder")
    p_build.add_argument("--project-dir", default=str(config.ROOT),
                         help="dbt project (and profiles.yml) folder")
    p_build.add_argument("dbt_args", nargs=argparse.REMAINDER,
                         help="after --: extra dbt build arguments")
    p_compare = sub.add_parser("compare", help="every mart: Postgres vs Spark")
    p_compare.add_argument("--marts", help="comma-separated marts to compare (default: all)")
    p_compare.add_argument("--schema", default=MARTS_SCHEMA,
                           help="layer to compare (default marts; intermediate works too)")
    for p in (p_build, p_compare):
        p.add_argument("--target-path", default=str(DEFAULT_TARGET_PATH),
                       help="dbt target dir of the Spark build (manifest.json for keys)")
    for p in (p_export, p_register, p_build, p_compare):  # also accepted after the action
        p.add_argument("--database", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)

    if args.action == "export":
        out = Path(args.out) if args.out else _raw_dir(args)
        started = time.perf_counter()
        counts = export(args.database, out)
        print(f"exported {sum(counts.values())} rows of {len(counts)} tables to {out} "
              f"in {time.perf_counter() - started:.1f} s")
        return 0
    if args.action == "register":
        started = time.perf_counter()
        counts = register(session(), _raw_dir(args))
        print(f"registered {len(counts)} tables in Spark database {RAW_DATABASE} "
              f"in {time.perf_counter() - started:.1f} s")
        return 0
    if args.action == "build":
        if missing():
            print(f"Spark is not available: {missing()}", file=sys.stderr)
            return 2
        dbt_args = [a for a in args.dbt_args if a != "--"]
        raw = _raw_dir(args)
        timings = {}
        started = time.perf_counter()
        counts = export(args.database, raw)
        timings["export"] = time.perf_counter() - started
        started = time.perf_counter()
        register(session(), raw)  # includes the JVM's start-up
        timings["register"] = time.perf_counter() - started
        started = time.perf_counter()
        ok = dbt_build(dbt_args, Path(args.target_path), Path(args.project_dir))
        timings["dbt build"] = time.perf_counter() - started
        print(f"raw rows: {sum(counts.values())} ({counts.get('listening_events', 0)} "
              "listening events)")
        for step, seconds in timings.items():
            print(f"{step:<10} {seconds:7.1f} s")
        print(f"{'total':<10} {sum(timings.values()):7.1f} s")
        return 0 if ok else 1
    marts = [m.strip() for m in args.marts.split(",")] if args.marts else None
    results = compare(args.database, session(), Path(args.target_path) / "manifest.json",
                      marts, args.schema)
    print(format_results(results))
    bad = [r for r in results if r["status"] != "ok"]
    print(f"{len(results) - len(bad)} of {len(results)} marts identical")
    return 1 if bad or not results else 0


if __name__ == "__main__":
    sys.exit(main())
