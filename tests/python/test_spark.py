"""The Spark target: profile = session settings, Parquet export, compare, and one end-to-end
build (Postgres and Spark from the same generated data, every portable mart equal).

Spark needs Java and pyspark + dbt-spark[session] (scripts/spark-setup.sh). Without them the
Spark tests skip, except under CI (env CI set), where they fail: CI must exercise the target.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jinja2
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from python_jobs import config, contract, db, dbt_cli, generate, spark

# The marts that build on Spark with the models as they are (with all their parents; the
# intermediate layer under them is compared too). The others fail there until the dbt project
# gets the fixes in docs/spark.md ("Portability fixes"): `+file_format: parquet` on models
# (else dbt-spark runs `alter column set not null` for enforced not_null constraints, which
# only Delta supports: dim_artists, dim_users, dim_playlists, fct_dau_mau, ...), a
# `spark__type_float` returning double (Spark's float is 32-bit: dim_tracks' contract), and
# row_number() cast to bigint in int_plays_sessionized (Spark's is int: fct_plays' contract).
# Add marts as they become portable; None builds and compares every mart.
PORTABLE_MARTS: list[str] | None = None


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
    expected = spark.session_conf(tmp_path)
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


@pytest.mark.slow
def test_spark_build_matches_postgres(fresh_database, tmp_path, monkeypatch, capsys):
    _require_spark()
    database = fresh_database("spark_e2e")
    assert generate.main(["--sessions", "300", "--seed", "5", "--database", database]) == 0
    # cautious: no test that also reads a mart outside the selection
    select = (["--select", *(f"+{m}" for m in PORTABLE_MARTS), "--indirect-selection",
               "cautious"] if PORTABLE_MARTS else [])
    args = [*select, "--exclude-resource-type", "unit_test"]
    dbt_cli.run(database, tmp_path / "pg", "build", *args)

    # Spark's metastore and warehouse for this test only (a JVM reads them once: at start).
    monkeypatch.setenv("SPARK_STATE_DIR", str(tmp_path / "spark"))
    target = tmp_path / "target_spark"
    # Data tests already ran on Postgres; on Spark the point is the numbers, and its data
    # tests would triple the run time.
    code = spark.main(["--database", database, "build", "--raw-dir", str(tmp_path / "raw"),
                       "--target-path", str(target), "--", *args,
                       "--exclude-resource-type", "test"])
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert "dbt build" in out

    marts = ["--marts", ",".join(PORTABLE_MARTS)] if PORTABLE_MARTS else []
    code = spark.main(["--database", database, "compare", "--target-path", str(target),
                       *marts])
    out = capsys.readouterr().out
    assert code == 0, out
    compared = [line for line in out.splitlines() if line.endswith("  ok")]
    assert len(compared) == (len(PORTABLE_MARTS) if PORTABLE_MARTS else len(compared)) > 0

    # The layer under them too: sessionization and flags row by row.
    code = spark.main(["--database", database, "compare", "--schema", "intermediate",
                       "--target-path", str(target)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "int_plays_sessionized" in out
