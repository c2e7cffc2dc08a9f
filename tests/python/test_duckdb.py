"""The DuckDB target: the same project on DuckDB from the Parquet export, every mart and
intermediate model equal to the PostgreSQL build (1e-9 relative, python_jobs.spark's
comparison), on one generated data set (300 sessions):

1. the newest full day of events is held back through the batch registry
   (python_jobs.holdback, as the benchmark does) while raw and the registry go to DuckDB
   (python_jobs.spark.export to Parquet, no Java needed), then restored;
2. PostgreSQL builds the whole project once (dbt in another process), while DuckDB builds
   it from the first export (first run: every incremental model created);
3. raw goes to DuckDB again and DuckDB runs dbt WITHOUT --full-refresh: an incremental run
   that rebuilds the days the registry says changed (and meets DuckDB's HUGEINT sums in
   BIGINT contract columns in the schema-change check);
4. every mart and intermediate model: DuckDB == PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import jinja2
import pytest
import yaml

from python_jobs import bench, config, contract, dbt_cli, generate, holdback, spark, warehouse
from python_jobs import db as pg
from python_jobs import duckdb as duck

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "duckdb_e2e"
SESSIONS = 300


def _profile_path(env: dict[str, str]) -> Path:
    """profiles.yml's duckdb `path` as dbt renders it in the repo root under `env`."""
    output = yaml.safe_load((config.ROOT / "profiles.yml").read_text())[
        "streaming_warehouse"]["outputs"]["duckdb"]
    rendered = jinja2.Template(output["path"]).render(
        env_var=lambda name, default=None: env.get(name, default))
    return (config.ROOT / rendered).resolve()


def test_profile_opens_the_file_the_jobs_use(monkeypatch, tmp_path):
    """dbt --target duckdb must open the file `register` wrote its raw views to."""
    monkeypatch.delenv("DUCKDB_PATH", raising=False)
    monkeypatch.setenv("PGDATABASE", "some_db")
    assert duck.database_path() == _profile_path(dict(os.environ))
    assert duck.database_path().name == "some_db.duckdb"
    assert duck.database_path("other").name == "other.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "x.duckdb"))
    assert duck.database_path() == _profile_path(dict(os.environ)) == tmp_path / "x.duckdb"
    env = duck.dbt_env("other", tmp_path / "y.duckdb")
    assert _profile_path(env) == tmp_path / "y.duckdb" and env["PGDATABASE"] == "other"


def test_register_types_views_as_the_raw_contract(tmp_path):
    """An empty export (no Parquet file) still gives a typed, empty view; a missing one is
    an error, not an empty table."""
    raw = tmp_path / "raw"
    for table in contract.TABLES.values():
        (raw / table.name).mkdir(parents=True)
    path = tmp_path / "w.duckdb"
    assert set(duck.register(path, raw).values()) == {0}
    with duck.connect(path, read_only=True) as con:
        types = dict(con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'listening_events'").fetchall())
    duckdb_names = {"text": "VARCHAR", "bigint": "BIGINT", "integer": "INTEGER",
                    "double": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE",
                    "timestamp": "TIMESTAMP"}  # timestamps naive UTC, as in Postgres
    expected = {name: duckdb_names[type_] for name, type_ in
                spark.file_columns(contract.TABLES["listening_events"])}
    assert types == expected and "started_date" not in types  # the day folders stay out
    shutil.rmtree(raw / "users")
    with pytest.raises(SystemExit, match="users is missing"):
        duck.register(path, raw)


# --- end to end: one build per engine ----------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("duckdb_e2e")
    raw, path, target = tmp / "raw", tmp / "warehouse.duckdb", tmp / "target_duckdb"
    pg.drop_database(DATABASE)
    warehouse.init(DATABASE)
    thread = None
    try:
        assert generate.main(["--sessions", str(SESSIONS), "--seed", "5", "--database",
                              DATABASE, "--log-level", "WARNING"]) == 0
        # 1. raw without the newest full day, as DuckDB's first build will read it
        held_day = holdback.newest_full_day(DATABASE)
        assert holdback.hold_back(DATABASE, held_day, date.today()) > 0
        duck.load(DATABASE, raw, path)
        # 2. PostgreSQL, one full build with the day back, beside the DuckDB steps
        assert holdback.restore(DATABASE) > 0
        postgres: list[BaseException | None] = []

        def build_postgres() -> None:
            try:
                dbt_cli.run(DATABASE, tmp / "pg", "build", *duck.NO_TESTS)
                postgres.append(None)
            except BaseException as exc:  # re-raised in the fixture's thread below
                postgres.append(exc)

        thread = threading.Thread(target=build_postgres, name="postgres-build")
        thread.start()
        assert duck.dbt(["build", *duck.NO_TESTS], DATABASE, path, target) == 0
        with duck.connect(path, read_only=True) as con:
            first_newest = con.execute(
                "select max(played_date) from marts.fct_plays").fetchone()[0]
        # 3. the day arrives on DuckDB: an incremental run
        duck.load(DATABASE, raw, path)
        assert duck.dbt(["run"], DATABASE, path, target) == 0
        thread.join()
        if postgres[0] is not None:
            raise postgres[0]
        yield {"path": path, "target": target, "held_day": held_day,
               "first_newest": first_newest}
    finally:
        if thread is not None:
            thread.join()  # never drop the database under a running build
        if not os.environ.get("KEEP_TEST_DATABASES"):
            pg.drop_database(DATABASE)


@pytest.mark.slow
@pytest.mark.parametrize("schema", ["marts", "intermediate"])
def test_every_model_on_duckdb_equals_postgres(built, schema):
    assert built["first_newest"] < built["held_day"]  # the first build lacked the day
    results = duck.compare(DATABASE, built["path"], built["target"] / "manifest.json",
                           schema=schema)
    bad = [r for r in results if r["status"] != "ok"]
    assert results and not bad, spark.format_results(results, "duckdb")
    names = {r["mart"] for r in results}
    expected = {"marts": {"fct_plays", "fct_sessions", "fct_user_features", "fct_skip_rates",
                          "fct_play_skip_features", "fct_retention_cohorts"},
                "intermediate": {"int_plays_sessionized", "int_user_track_days_aggregated"}}
    assert expected[schema] <= names
    assert all(r["duckdb_rows"] == r["postgres_rows"] for r in results)
    assert sum(r["duckdb_rows"] for r in results) > 0



@pytest.mark.slow
def test_incremental_run_on_duckdb_read_the_registry_copy(built):
    """DuckDB's incremental run was driven by the copied batch registry: each incremental
    model is built up to the newest change recorded there (without the copy it would have
    no change to read and rebuild every day)."""
    with duck.connect(built["path"], read_only=True) as con:
        newest = con.execute("select max(change_id) from raw.load_changes").fetchone()[0]
        built_up_to = dict(con.execute(
            "select watermark_name, max(change_id) from incremental.watermarks "
            "where watermark_name in ('fct_sessions', 'int_plays_sessionized_odd_users') "
            "group by 1").fetchall())
    assert newest is not None and newest > 0
    assert built_up_to == {"fct_sessions": newest, "int_plays_sessionized_odd_users": newest}

def test_bench_summary_puts_postgres_and_duckdb_side_by_side(capsys):
    """The figures python -m python_jobs.bench --duckdb writes for scripts, and prints."""
    def stage(name: str, seconds: float) -> bench.Stage:
        return bench.Stage(name, 1, seconds, 1 / seconds, 100.0)

    stages = [stage(bench.FULL, 240.0), stage(bench.DUCKDB_FULL, 64.0),
              stage(bench.TEST, 90.0), stage(bench.BACKFILL, 70.0),
              stage(bench.INCREMENTAL, 48.0), stage(bench.DAILY_TEST, 21.0)]
    figures = bench.summary(stages)
    assert figures == {"postgres_full_seconds": 240.0, "duckdb_full_seconds": 64.0,
                       "full_ratio": 3.75, "incremental_seconds": 48.0,
                       "incremental_ratio": 0.2, "test_seconds": 90.0,
                       "backfill_seconds": 70.0, "incremental_test_seconds": 21.0}
    bench.print_summary(figures)
    printed = capsys.readouterr().out
    assert "3.75x" in printed and "20.0% of the full build" in printed
    assert "dbt test after the daily run (rebuilt days only): 21.0 s" in printed
    without = bench.summary([s for s in stages if s.name != bench.DUCKDB_FULL])
    assert without["duckdb_full_seconds"] is None and without["full_ratio"] is None
    assert without["incremental_ratio"] == 0.2
