"""The dbt project's quality bar, measured from outside with dbt-score and dbt-coverage.

Every relation is built empty (`dbt build --empty`) in a database of its own, so `docs
generate` writes a catalog with every column of every model and source; then dbt-score lints
the manifest (with pyproject.toml's [tool.dbt-score] and the rules in dbt_score_rules/) and
dbt-coverage counts documented and tested columns against the catalog.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from python_jobs import config, db, dbt_cli, warehouse
from python_jobs.train import store

DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "project_quality"
BIN = Path(sys.executable).parent
MIN_SCORE = 9.5
MIN_DOCUMENTED = 0.90
MIN_TESTED = 0.60

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Iterator[Path]:
    """target/ with manifest.json and catalog.json of the whole project."""
    tmp = tmp_path_factory.mktemp("quality")
    db.drop_database(DATABASE)
    warehouse.init(DATABASE)
    # The ML wing reads the training job's tables and fails loudly without them: create
    # them empty, as the first training run would, so every model is in the catalog.
    with db.connect(DATABASE) as conn:
        store.ensure_schema(conn)
    try:
        dbt_cli.run(DATABASE, tmp, "build", "--empty", "--selector", "nightly_full",
                    "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test")
        dbt_cli.run(DATABASE, tmp, "docs", "generate", "--selector", "nightly_full")
        yield tmp / "target"
    finally:
        if not os.environ.get("KEEP_TEST_DATABASES"):
            db.drop_database(DATABASE)


def _run(*args: str) -> subprocess.CompletedProcess:
    # From the repo root: dbt-score reads pyproject.toml and imports dbt_score_rules there.
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=config.ROOT,
                          capture_output=True, text=True, timeout=300)


def test_dbt_score_passes_and_every_model_and_seed_is_owned(artifacts: Path) -> None:
    result = _run("dbt-score", "lint", "--manifest", str(artifacts / "manifest.json"),
                  "--format", "json", "--fail-project-under", str(MIN_SCORE))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["project"]["score"] >= MIN_SCORE
    owned = {"model": "dbt_score_rules.ownership.has_group_owner",
             "seed": "dbt_score_rules.ownership.seed_has_group_owner"}
    items = {name: item for name, item in report["evaluables"].items() if item["type"] in owned}
    manifest = json.loads((artifacts / "manifest.json").read_text())
    nodes = {uid for uid, node in manifest["nodes"].items()
             if node["resource_type"] in owned and node["package_name"] == "streaming_warehouse"}
    assert set(items) == nodes  # every model and seed was scored
    unowned = [name for name, item in items.items()
               if item["results"][owned[item["type"]]]["result"] != "OK"]
    assert unowned == []


@pytest.mark.parametrize(("kind", "minimum"), [("doc", MIN_DOCUMENTED), ("test", MIN_TESTED)])
def test_dbt_coverage_of_columns(artifacts: Path, tmp_path: Path, kind: str,
                                 minimum: float) -> None:
    report = tmp_path / f"coverage_{kind}.json"
    # the two halves of int_plays_flagged, int_plays_sessionized and int_play_histories_counted
    # have its columns (one YAML list): counted once, in the view
    result = _run("dbt-coverage", "compute", kind, "--run-artifacts-dir", str(artifacts),
                  "--cov-report", str(report), "--cov-fail-under", str(minimum),
                  "--model-path-exclusion-filter",
                  "models/intermediate/listening/int_plays_sessionized_",
                  "--model-path-exclusion-filter",
                  "models/intermediate/listening/int_plays_flagged_",
                  "--model-path-exclusion-filter",
                  "models/intermediate/listening/int_play_histories_counted_")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    coverage = json.loads(report.read_text())
    # the catalog holds every model and source, so the figure covers the whole project
    assert coverage["total"] > 800
    assert coverage["coverage"] >= minimum


def test_a_uniqueness_test_off_on_postgres_has_a_unique_index_in_its_place(artifacts: Path) -> None:
    """A `unique` or `unique_combination_of_columns` test disabled on PostgreSQL must have a
    unique index on the same columns on its model (incremental_by_day's `key`), which checks
    every insert instead: the key is written twice, in the model's SQL and in its YAML, and
    this keeps the two from drifting apart. A view over models that all have that index has
    it: int_plays_sessionized, the union of two parts whose users differ; fct_plays over
    that view; fct_play_skip_features joining it and a table on their key."""
    manifest = json.loads((artifacts / "manifest.json").read_text())
    unique_indexes = {uid: {frozenset(index["columns"]) for index in node["config"]["indexes"]
                            if index.get("unique")}
                      for uid, node in manifest["nodes"].items()
                      if node["resource_type"] == "model" and node["config"].get("indexes")}
    views = {uid: node.get("depends_on", {}).get("nodes", [])
             for uid, node in manifest["nodes"].items()
             if node["resource_type"] == "model" and node["config"]["materialized"] == "view"}
    for _ in views:  # a view over a view: until nothing more is found
        for uid, parents in views.items():
            if parents and all(parent in unique_indexes for parent in parents):
                unique_indexes[uid] = set.intersection(*(unique_indexes[p] for p in parents))
    disabled = [node for nodes in manifest["disabled"].values() for node in nodes
                if node["resource_type"] == "test" and node.get("test_metadata", {}).get("name")
                in ("unique", "unique_combination_of_columns")]
    assert disabled
    unguarded = []
    for test in disabled:
        kwargs = test["test_metadata"]["kwargs"]
        columns = frozenset(kwargs.get("combination_of_columns") or [kwargs["column_name"]])
        if columns not in unique_indexes.get(test["attached_node"], set()):
            unguarded.append((test["name"], sorted(columns)))
    assert unguarded == []
