"""The Spark target: profile = session settings, Parquet export, compare, and end to end on
one generated data set (300 sessions) built once on each engine, shared by every slow test:

1. the newest full day of raw.listening_events is held back (python_jobs.holdback, as the
   benchmark does; the batch registry, raw.load_changes, is copied to Spark with the data);
   Spark builds the whole project (first run: every incremental model created from scratch);
2. the day is restored; Postgres builds the whole project in one full build;
3. Spark exports and registers raw again and runs dbt WITHOUT --full-refresh: the
   incremental models overwrite only their lookback days (insert_overwrite);
4. every mart and intermediate model: Spark (incremental) == Postgres (full), 1e-9 relative.
   Spark == Postgres on full builds is what this comparison established before incremental
   runs were part of it, so equality here says: incremental run == full refresh on Spark;
5. the Python jobs on both engines (DBT_TARGET unset / spark): ab analyze gives the same
   numbers, train the same rows and the same fit, and the SQL scoring mart builds on Spark.

Spark needs Java and pyspark + dbt-spark[session] (scripts/spark-setup.sh). Without them the
Spark tests skip, except under CI (env CI set), where they fail: CI must exercise the target.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from python_jobs import (
    config,
    contract,
    db,
    dbt_cli,
    generate,
    holdback,
    spark,
    spark_session,
    warehouse,
)
from python_jobs.ab import __main__ as ab_cli
from python_jobs.train import __main__ as train_cli
from python_jobs.train import data, skip

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "spark_e2e"
SESSIONS = 300
# Unit tests run in the Postgres suite; data tests already ran on Postgres, and on Spark the
# point is the numbers (its data tests would triple the run time).
NO_TESTS = ["--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]
ML_MODELS = ["--select", "tag:ml_scoring"]
# Small enough that the skip model's training days are hash-sampled (about 3,500 plays in
# them), so the md5 sample is compared across engines too; the sessions are not sampled.
SAMPLE_ROWS = 2000


def _require_spark() -> None:
    reason = spark.missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Spark target cannot be tested under CI: {reason}")
    pytest.skip(f"Spark target not testable here: {reason}")


def _render_profile(state: Path) -> dict:
    """profiles.yml's spark output as dbt renders it, with SPARK_STATE_DIR=state."""
    env = {**os.environ, "SPARK_STATE_DIR": str(state)}

    def env_var(name: str, default: str | None = None) -> str:
        return env.get(name, default)

    raw = yaml.safe_load((config.ROOT / "profiles.yml").read_text())
    output = raw["streaming_warehouse"]["outputs"]["spark"]
    return {key: jinja2.Template(str(value)).render(env_var=env_var)
            for key, value in output["server_side_parameters"].items()}


def test_profile_starts_spark_as_the_jobs_do(tmp_path):
    """dbt --target spark and python_jobs.spark must open the same metastore and agree on
    time zone and parallelism, or `register`'s tables are invisible to dbt."""
    expected = spark_session.session_conf(tmp_path)
    expected.pop("spark.sql.ansi.enabled")  # dbt-spark adds it itself
    assert _render_profile(tmp_path) == expected
    for name in ("profiles.yml", "profiles.yml.example"):
        profile = yaml.safe_load((config.ROOT / name).read_text())
        output = profile["streaming_warehouse"]["outputs"]["spark"]
        assert (output["type"], output["method"], output["schema"]) == (
            "spark", "session", "analytics"), name


def test_compare_frames_tolerance_and_mismatches():
    stamps = ["2026-01-01 10:00:00.123", None, "2026-01-02 00:00:00.000"]
    pg = pd.DataFrame({"k": [1, 2, 3], "x": [1.0, 2.0, 0.0], "s": ["a", None, "c"],
                       "t": pd.to_datetime(stamps)})
    same = pg.copy()
    same["x"] = [1.0 + 1e-12, 2.0, 1e-15]  # within 1e-9 relative / the absolute floor
    same["k"] = same["k"].astype("int32")
    assert spark.compare_frames(pg, same, ["k"]) == []
    assert spark.compare_frames(pg, same.iloc[::-1], None) == []  # no key: sorted rows

    off = same.copy()
    off.loc[1, "x"] = 2.0 + 1e-6
    off.loc[2, "s"] = "C"
    off.loc[0, "t"] = pd.Timestamp("2026-01-01 10:00:00.124")
    problems = spark.compare_frames(pg, off, ["k"])
    assert [p.split(":")[0] for p in problems] == ["x", "s", "t"]

    fewer = same.iloc[:2]
    problems = spark.compare_frames(pg, fewer, ["k"])
    assert problems[0] == "rows 3 vs 2" and "1 only in postgres" in problems[1]
    assert spark.compare_frames(pg, same.drop(columns="s"), ["k"])[0].startswith("columns")


def test_mart_keys_from_manifest(tmp_path):
    def model(name: str, meta: dict | None = None) -> dict:
        return {"resource_type": "model", "schema": "marts", "name": name, "alias": name,
                "config": {"meta": meta or {}}}

    def test(kind: str, model_name: str, kwargs: dict) -> dict:
        return {"resource_type": "test", "attached_node": f"model.p.{model_name}",
                "test_metadata": {"name": kind, "kwargs": kwargs}}

    nodes = {
        "model.p.fct_a": model("fct_a"),
        "model.p.fct_b": model("fct_b"),
        "model.p.fct_c": model("fct_c", {"grain": ["day", "user_id"]}),
        "model.p.stg_x": {**model("stg_x"), "schema": "staging"},
        "test.p.1": test("unique", "fct_a", {"column_name": "a_id"}),
        "test.p.2": test("unique", "fct_b", {"column_name": "b_id"}),
        "test.p.3": test("unique_combination_of_columns", "fct_b",
                         {"combination_of_columns": ["day", "kind"]}),
        "test.p.4": test("unique", "fct_c", {"column_name": "c_id"}),
        "test.p.5": test("unique", "stg_x", {"column_name": "x_id"}),
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": nodes}))
    assert spark.mart_keys(path) == {"fct_a": ["a_id"], "fct_b": ["day", "kind"],
                                     "fct_c": ["day", "user_id"]}


def test_db_speaks_spark_through_the_same_calls():
    """db on a SparkSession (a stand-in recording its SQL): psycopg2-style parameters become
    Spark's markers with the values bound, results come through Arrow as the Postgres path
    gives them, DDL speaks Spark's types."""
    calls: list[tuple[str, object]] = []
    result = pa.table({"at": pa.array([datetime(2026, 1, 2, 3, 4, 5, 6)],
                                      pa.timestamp("us", tz="UTC")), "n": [7]})

    def sql(query: str, args: object = None) -> SimpleNamespace:
        calls.append((query, args))
        return SimpleNamespace(toArrow=lambda: result, collect=list)

    fake = SimpleNamespace(sql=sql)
    assert db.is_spark(fake) and db.engine(fake) == "spark"
    frame = db.read_sql(fake, "select * from t where a = %s and b like 'x%%'", (1,))
    assert calls[-1] == ("select * from t where a = ? and b like 'x%'", [1])
    assert frame["at"].iloc[0] == pd.Timestamp("2026-01-02 03:04:05.000006")  # naive UTC
    db.read_sql(fake, "select 1 where c = %(c)s", {"c": "v"})
    assert calls[-1] == ("select 1 where c = :c", {"c": "v"})
    db.execute(fake, "select '100%%'")  # no parameters: psycopg2 leaves the text alone
    assert calls[-1] == ("select '100%%'", None)
    assert [len(c) for c in db.stream_sql(fake, "select 2", (), chunk_rows=1)] == [1]
    db.create_table(fake, "ml.x", {"a": "text", "b": "double precision", "c": "jsonb"})
    assert calls[-1][0] == ("create table if not exists ml.x (a string, b double, c string) "
                            "using parquet")
    db.grant_read(fake, "ml")  # no roles on Spark: no SQL at all
    assert calls[-1][0].startswith("create table")

    source = skip.SOURCE
    spark_query = data.query(source, "play_id", 0.5, "spark")
    assert "cast(conv(substr(md5(play_id), 1, 8), 16, 10) as bigint) < 2147483648" in spark_query
    assert "order by" not in spark_query  # rows are put in order in Python (data.key_order)
    assert db.byte_order_sql("spark", "k") == "k"
    assert db.byte_order_sql("postgres", "k") == 'k collate "C"'
    assert data.numeric_expression("x", "boolean", "spark") == "cast(cast(x as int) as double)"


def test_export_writes_contract_types_and_day_folders(fresh_database, tmp_path):
    database = fresh_database("spark_export")
    assert generate.main(["--sessions", "60", "--seed", "3", "--database", database]) == 0
    counts = spark.export(database, tmp_path)
    with db.connect(database) as conn:
        for table in contract.TABLES.values():
            expected = db.read_sql(conn, f"select count(*) as n from raw.{table.name}")
            assert counts[table.name] == expected["n"].iloc[0], table.name
        events = db.read_sql(conn, "select event_id, started_at, is_shuffle, session_hint "
                                   "from raw.listening_events order by event_id")

    users = pq.read_table(tmp_path / "users")
    assert users.schema == spark.arrow_schema(contract.TABLES["users"])
    table = contract.TABLES["listening_events"]
    folders = sorted(p.name for p in (tmp_path / "listening_events").iterdir())
    assert folders and all(f.startswith("started_date=") for f in folders)
    data = ds.dataset(tmp_path / "listening_events", schema=spark.arrow_schema(table),
                      partitioning="hive").to_table().to_pandas()
    assert (data["started_date"] == data["started_at"].dt.date).all()
    data = data.sort_values("event_id").reset_index(drop=True)
    # Timestamps are the same instants (UTC), microseconds included; nulls stay nulls.
    assert (data["started_at"].dt.tz_localize(None).to_numpy()
            == pd.to_datetime(events["started_at"]).to_numpy()).all()
    assert data["is_shuffle"].isna().sum() == events["is_shuffle"].isna().sum()
    assert data["session_hint"].isna().sum() == events["session_hint"].isna().sum()

    spark.export(database, tmp_path)  # a rerun replaces, not appends
    again = ds.dataset(tmp_path / "listening_events", partitioning="hive").to_table()
    assert again.num_rows == counts["listening_events"]



# --- end to end: one build per engine, shared -------------------------------------------------


def _created(session, table: str) -> str:
    """The Spark table's Created Time: a full refresh re-creates the table, an incremental
    run (insert_overwrite of day partitions) keeps it."""
    rows = session.sql(f"describe table extended {table}").collect()
    return next(r.data_type for r in rows if r.col_name == "Created Time")


def _incremental_models(manifest_path: Path) -> dict[str, str]:
    """schema.name of every incremental model -> its date (partition) column."""
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return {f"{n['schema']}.{n['alias'] or n['name']}": n["config"]["partition_by"][0]
            for n in nodes if n["resource_type"] == "model"
            and n["config"].get("materialized") == "incremental"}


def _newest_days(session, models: dict[str, str]) -> dict[str, object]:
    return {table: session.sql(f"select max({column}) as d from {table}").collect()[0].d
            for table, column in models.items()}


REGISTRY_SCHEMA = ("change_id bigint, table_name string, batch_name string, action string, "
                   "min_day date, max_day date, rows_before bigint, rows_after bigint, "
                   "changed_at timestamp")


def _copy_registry(session) -> None:
    """raw.load_changes from Postgres to Spark, where the incremental models look for what
    changed (the export carries only the contract's tables)."""
    with db.connect(DATABASE) as conn:
        changes = db.read_sql(conn, "select * from raw.load_changes order by change_id")
    session.sql("create database if not exists raw")
    frame = session.createDataFrame(changes.astype(object).where(changes.notna(), None),
                                    schema=REGISTRY_SCHEMA)
    frame.write.mode("overwrite").format("parquet").saveAsTable("raw.load_changes")


def _refresh_events(session, raw: Path) -> None:
    """Only raw.listening_events exported again (its day folders replaced, vanished days'
    partitions dropped from the registration), and the registry copied."""
    table = contract.TABLES["listening_events"]
    with db.connect(DATABASE) as conn:
        db.execute(conn, "set datestyle = 'ISO, YMD'")
        spark.export_table(conn, table, raw)
    session.sql(f"msck repair table raw.{table.name} sync partitions")
    session.sql(f"refresh table raw.{table.name}")
    _copy_registry(session)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory) -> Iterator[dict]:
    _require_spark()
    tmp = tmp_path_factory.mktemp("spark_e2e")
    raw, target = tmp / "raw", tmp / "target_spark"
    db.drop_database(DATABASE)
    warehouse.init(DATABASE)
    # Spark's metastore and warehouse for this module only (a JVM reads them once: at start).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARK_STATE_DIR", str(tmp / "spark"))
        patch.delenv("DBT_TARGET", raising=False)
        try:
            assert generate.main(["--sessions", str(SESSIONS), "--seed", "5", "--database",
                                  DATABASE, "--log-level", "WARNING"]) == 0
            held_day = holdback.newest_full_day(DATABASE)
            assert holdback.hold_back(DATABASE, held_day, date.today()) > 0
            # 1. Spark, first run, without the held-back day
            _copy_registry(spark.session())
            assert spark.main(["--database", DATABASE, "build", "--raw-dir", str(raw),
                               "--target-path", str(target), "--", *NO_TESTS]) == 0
            session = spark.session()
            incremental = _incremental_models(target / "manifest.json")
            first_run = {"created": {t: _created(session, t) for t in incremental},
                         "newest": _newest_days(session, incremental)}
            # 2. Postgres, one full build of everything with the day back (the reference:
            # its data tests are the other modules' to run, not on this module's long path)
            holdback.restore(DATABASE)
            dbt_cli.run(DATABASE, tmp / "pg", "build", *NO_TESTS)
            # 3. Spark again on the complete raw data: an incremental run
            spark.export(DATABASE, raw)
            spark.register(session, raw)
            _copy_registry(session)
            assert spark.dbt_build([], target, command="run")  # models only, no seeds
            yield {"tmp": tmp, "target": target, "session": session, "held_day": held_day,
                   "incremental": incremental, "first_run": first_run}
        finally:
            if not os.environ.get("KEEP_TEST_DATABASES"):
                db.drop_database(DATABASE)


@pytest.mark.slow
def test_incremental_run_on_spark_equals_a_full_build(e2e):
    session, incremental = e2e["session"], e2e["incremental"]
    plays = [f"intermediate.int_plays_sessionized_{users}_users" for users in ("even", "odd")]
    assert "marts.fct_sessions" in incremental and set(plays) <= set(incremental)
    # The second run really was incremental: the same tables, not re-created, and the
    # held-back day arrived in them by their own insert_overwrite.
    for table in incremental:
        assert _created(session, table) == e2e["first_run"]["created"][table], table
    run_results = json.loads((e2e["target"] / "run_results.json").read_text())["results"]
    ran = {r["unique_id"].split(".")[-1]: r["status"] for r in run_results}
    assert all(ran[t.split(".")[1]] == "success" for t in incremental), ran
    before, after = e2e["first_run"]["newest"], _newest_days(session, incremental)
    assert max(before[t] for t in plays) < e2e["held_day"] <= max(after[t] for t in plays)
    assert all(after[t] >= before[t] for t in incremental)

    manifest = e2e["target"] / "manifest.json"
    for schema in ("marts", "intermediate"):
        results = spark.compare(DATABASE, session, manifest, schema=schema)
        bad = [r for r in results if r["status"] != "ok"]
        assert results and not bad, spark.format_results(results)
    assert "int_plays_sessionized" in {r["mart"] for r in results}


def _postgres(query: str) -> pd.DataFrame:
    with db.connect(DATABASE) as conn:
        return db.read_sql(conn, query)


def _same(pg: pd.DataFrame, sp: pd.DataFrame, key: list[str], ignore: tuple[str, ...]) -> None:
    """Equal within compare's 1e-9 relative, apart from the run's own stamps."""
    problems = spark.compare_frames(pg.drop(columns=list(ignore)),
                                    sp.drop(columns=list(ignore)), key)
    assert not problems, problems


@pytest.mark.slow
def test_ab_analyze_gives_the_same_results_on_both_engines(e2e, monkeypatch):
    common = ["analyze", "--all", "--database", DATABASE, "--log-level", "WARNING"]
    assert ab_cli.main([*common, "--report", str(e2e["tmp"] / "ab_pg")]) == 0
    monkeypatch.setenv("DBT_TARGET", "spark")
    assert ab_cli.main([*common, "--report", str(e2e["tmp"] / "ab_spark")]) == 0

    session = e2e["session"]
    stamps = ("run_id", "run_at")
    for table, key in (("experiment_results", ["experiment_id", "metric", "method", "variant"]),
                       ("srm_checks", ["experiment_id", "variant"]),
                       ("runs", ["experiment_id"])):
        pg = _postgres(f"select * from ab.{table}")
        sp = session.table(f"ab.{table}").toPandas()
        assert len(pg) > 0, table
        ignore = (*stamps, "report_path") if table == "runs" else stamps
        _same(pg, sp, key, ignore)
    latest = session.table("ab.latest_experiment_results").toPandas()
    assert len(latest) == len(_postgres("select * from ab.latest_experiment_results")) > 0


@pytest.mark.slow
def test_train_gives_the_same_fit_on_both_engines(e2e, monkeypatch):
    args = ["--database", DATABASE, "--sample-rows", str(SAMPLE_ROWS), "--log-level",
            "WARNING"]
    assert train_cli.main(args) == 0
    monkeypatch.setenv("DBT_TARGET", "spark")
    assert train_cli.main(args) == 0
    session = e2e["session"]

    def spark_table(name: str) -> pd.DataFrame:
        return session.table(f"ml.{name}").toPandas()

    # The same rows in: windows, populations, the md5 sample, held-out rows.
    counts = ["model", "train_start_date", "train_end_date", "test_start_date",
              "test_end_date", "train_population_rows", "train_rows", "test_rows",
              "is_sampled", "sample_method", "feature_count", "selected_feature_count"]
    pg_runs = _postgres("select * from ml.model_runs")[counts].sort_values("model")
    sp_runs = spark_table("model_runs")[counts].sort_values("model")
    assert spark.compare_frames(pg_runs, sp_runs, ["model"]) == []
    skip_run = pg_runs.set_index("model").loc["skip"]
    assert skip_run["is_sampled"] and skip_run["train_rows"] < skip_run["train_population_rows"]

    # The same fit out: identical rows in identical order give lbfgs and least squares the
    # same arithmetic; what can differ is the last bits of mart values computed by another
    # engine (1e-9 relative at most, compared above), which the fit can only damp or pass on.
    metrics = ["model", "split", "metric", "value"]
    _same(_postgres("select * from ml.model_metrics")[metrics],
          spark_table("model_metrics")[metrics], metrics[:3], ())
    terms = ["model", "term_index", "term", "coefficient", "fill_value", "center", "scale",
             "is_selected"]
    _same(_postgres("select * from ml.model_coefficients")[terms],
          spark_table("model_coefficients")[terms], ["model", "term_index"], ())
    predictions = ["model", "play_id", "session_id", "event_date", "label", "prediction",
                   "baseline_prediction"]
    pg_pred = _postgres("select * from ml.model_predictions")[predictions]
    sp_pred = spark_table("model_predictions")[predictions]
    pg_pred["row_key"] = pg_pred["play_id"].fillna(pg_pred["session_id"])
    sp_pred["row_key"] = sp_pred["play_id"].fillna(sp_pred["session_id"])
    _same(pg_pred, sp_pred, ["model", "row_key"], ())

    # The SQL scoring mart reads Spark's ml tables and scores every play as Postgres does
    # (whose build runs the ml models' data tests).
    assert spark.dbt_build([*ML_MODELS, *NO_TESTS], e2e["target"])
    dbt_cli.run(DATABASE, e2e["tmp"] / "pg", "build", *ML_MODELS)
    columns = ["play_id", "linear_predictor", "skip_probability"]
    pg_scores = _postgres("select * from marts.fct_play_skip_scores")[columns]
    sp_scores = session.table("marts.fct_play_skip_scores").toPandas()[columns]
    assert len(pg_scores) > 4000
    _same(pg_scores, sp_scores, ["play_id"], ())


@pytest.mark.slow
def test_oldest_days_loaded_last_on_spark_equal_a_full_build(e2e):
    """A second arrival order on Spark: the oldest ten days removed, an incremental run,
    the days loaded again, an incremental run; every incremental model must equal the
    Postgres full build again (day partitions dropped, then backfilled)."""
    session, target, raw = e2e["session"], e2e["target"], e2e["tmp"] / "raw"
    only_incremental = ["--select", "config.materialized:incremental"]
    with db.connect(DATABASE) as conn:
        first = db.read_sql(conn, "select min(started_at)::date as d "
                                  "from raw.listening_events").iloc[0]["d"]
    assert holdback.hold_back(DATABASE, first, first + timedelta(days=9)) > 0
    try:
        _refresh_events(session, raw)
        assert spark.dbt_build(only_incremental, target, command="run")
        oldest = session.sql("select min(played_date) as d from marts.fct_plays").collect()[0].d
        assert oldest > first + timedelta(days=9)
    finally:
        holdback.restore(DATABASE)
    _refresh_events(session, raw)
    assert spark.dbt_build(only_incremental, target, command="run")
    for schema in ("marts", "intermediate"):
        tables = [t.split(".")[1] for t in e2e["incremental"] if t.startswith(schema + ".")]
        results = spark.compare(DATABASE, session, target / "manifest.json", marts=tables,
                                schema=schema)
        bad = [r for r in results if r["status"] != "ok"]
        assert len(results) == len(tables) and not bad, spark.format_results(results)
