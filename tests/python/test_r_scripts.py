"""The R scripts against a built warehouse, and R's A/B statistics against python_jobs.ab.

Runs r_scripts/cohort_analysis.R, visualization.R and ab_testing.R with Rscript (as the
read-only role `reporter` on the embedded server), checks that every PNG and CSV they promise
is written and non-empty, and that ab_testing.R, which re-derives the primary A/B statistics
with t.test (Welch), prop.test(correct = FALSE), chisq.test and a hand-written delta method,
agrees with the rows python -m python_jobs.ab analyze wrote to ab.latest_experiment_results
(and the SRM checks with ab.latest_srm_checks) to 1e-6.

Skipped when Rscript is missing, except under CI (env CI set), where that is a failure.
Debian packages: r-base-core r-cran-dbi r-cran-rpostgresql r-cran-ggplot2 r-cran-dplyr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from python_jobs import config, db, report_demo

R_DIR = config.ROOT / "r_scripts"
TOLERANCE = 1e-6
COMPARED = ("n", "n_control", "value", "value_control", "effect", "ci_low", "ci_high",
            "statistic", "df", "p_value")
OUTPUTS = {
    "cohort_analysis.R": ["retention_matrix_weekly.csv", "retention_by_tier.csv",
                          "churn_by_tier.csv", "retention_heatmap.png", "retention_curves.png",
                          "retention_by_tier.png"],
    "visualization.R": ["kpis.csv", "skip_rates.csv", "playlist_funnel.csv", "dau_mau.png",
                        "stickiness_by_tier.png", "skip_rate_by_genre.png",
                        "skip_rate_by_hour.png", "skip_rate_by_segment.png",
                        "playlist_funnel.png", "playlist_dropoff.png"],
    "ab_testing.R": ["ab_results_r.csv", "ab_srm_r.csv", "ab_forest_r.png"],
}


def _rscript() -> str:
    found = shutil.which("Rscript")
    if found is None:
        message = ("Rscript not found: apt-get install -y r-base-core r-cran-dbi "
                   "r-cran-rpostgresql r-cran-ggplot2 r-cran-dplyr")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def r_outputs(tmp_path_factory) -> dict:
    rscript = _rscript()
    database = report_demo.shared(tmp_path_factory.getbasetemp())["database"]
    out = tmp_path_factory.mktemp("r_output")
    settings = config.settings(database)
    env = {**os.environ, "PGDATABASE": database}
    if settings.embedded:  # the read-only role, as Tableau and analysts use it
        env.update(PGHOST=settings.host, PGPORT=str(settings.port),
                   PGUSER=config.REPORTING_ROLE)
        env.pop("PGPASSWORD", None)
    # The three scripts in parallel: most of each run is R loading ggplot2.
    procs = {script: subprocess.Popen([rscript, str(R_DIR / script), str(out)], env=env,
                                      cwd=config.ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
             for script in OUTPUTS}
    runs = {}
    for script, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        runs[script] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return {"database": database, "out": out, "runs": runs}


@pytest.mark.parametrize("script", sorted(OUTPUTS))
def test_script_runs_and_writes_its_outputs(r_outputs, script):
    run = r_outputs["runs"][script]
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    out: Path = r_outputs["out"]
    for name in OUTPUTS[script]:
        path = out / name
        assert path.exists() and path.stat().st_size > 0, f"{script} did not write {name}"
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert len(pd.read_csv(path)) > 0, f"{name} is empty"


def _python_results(database: str) -> pd.DataFrame:
    with db.connect(database) as conn:
        return db.read_sql(conn, "select * from ab.latest_experiment_results where method in "
                                 "('welch_t', 'two_proportion_z', 'chi_square', "
                                 "'ratio_delta_z') and not is_control")


def test_ab_testing_agrees_with_python(r_outputs):
    assert r_outputs["runs"]["ab_testing.R"].returncode == 0
    r = pd.read_csv(r_outputs["out"] / "ab_results_r.csv")
    python = _python_results(r_outputs["database"])
    keys = ["experiment_id", "metric", "method", "variant"]
    merged = python.merge(r, on=keys, how="outer", suffixes=("_py", "_r"), indicator=True)
    unmatched = merged[merged["_merge"] != "both"][[*keys, "_merge"]]
    assert unmatched.empty, f"rows only on one side:\n{unmatched}"
    assert set(merged["method"]) == {"welch_t", "two_proportion_z", "chi_square",
                                     "ratio_delta_z"}
    for column in COMPARED:
        py = merged[f"{column}_py"].to_numpy(dtype=float)
        rv = merged[f"{column}_r"].to_numpy(dtype=float)
        same_missing = np.isnan(py) == np.isnan(rv)
        assert same_missing.all(), f"{column}: NULL on one side only\n" \
            f"{merged.loc[~same_missing, keys]}"
        ok = np.isclose(rv, py, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True)
        assert ok.all(), f"{column} differs:\n" + merged.loc[
            ~ok, [*keys, f"{column}_py", f"{column}_r"]].to_string()


def test_ab_srm_agrees_with_python(r_outputs):
    r = pd.read_csv(r_outputs["out"] / "ab_srm_r.csv")
    with db.connect(r_outputs["database"]) as conn:
        python = db.read_sql(conn, "select experiment_id, max(statistic) as statistic, "
                                   "max(df) as df, max(p_value) as p_value, "
                                   "bool_or(is_mismatch) as is_mismatch "
                                   "from ab.latest_srm_checks group by experiment_id")
    merged = python.merge(r, on="experiment_id", suffixes=("_py", "_r"))
    assert len(merged) == len(python) == len(r) > 0
    for column in ("statistic", "df", "p_value"):
        assert np.allclose(merged[f"{column}_r"].astype(float),
                           merged[f"{column}_py"].astype(float), rtol=TOLERANCE,
                           atol=TOLERANCE), merged
    assert (merged["is_mismatch_r"] == merged["is_mismatch_py"]).all()
