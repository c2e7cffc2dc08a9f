"""python -m python_jobs.report on a small built warehouse, opened in headless Chromium.

The report must be one self-contained HTML file (nothing fetched from the network) with every
chart present: KPIs, DAU/MAU, stickiness, retention heatmap and curves, playlist funnel and
drop-off, skip rates by genre, hour and segment, the A/B results table and forest plot, and,
when python -m python_jobs.train exists (it runs in the shared fixture), the model metrics,
ROC, calibration and feature-importance charts. Chromium (--dump-dom) runs the report's own
script, which marks every chart whose SVG drew marks; a screenshot is saved under the test's
tmp dir and copied to output/report_screenshot.png.

Chromium missing: skipped, except under CI (env CI set), where that is a failure. Debian
package: chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from python_jobs import config, db, report, report_demo

MART_CHARTS = ("dau-mau", "stickiness", "retention-heatmap", "retention-curves",
               "playlist-funnel", "playlist-dropoff", "skip-genre", "skip-hour",
               "skip-segment", "ab-forest")
ML_CHARTS = ("roc", "calibration", "importance-skip", "importance-duration")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    shared = report_demo.shared(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert report.main(["--database", shared["database"], "--out", str(out),
                        "--log-level", "WARNING"]) == 0
    return {**shared, "path": out, "html": out.read_text(encoding="utf-8")}


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "chromium not found: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _run_chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile_{len(list(tmp.glob('profile_*')))}"
    profile.mkdir()
    return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_report_is_self_contained(built):
    html = built["html"]
    assert html.startswith("<!DOCTYPE html>")
    without_svg_namespace = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", without_svg_namespace)
    assert not re.search(r"url\(|@import|https?://", without_svg_namespace)
    assert "<script src" not in html and "<link" not in html


def test_every_chart_is_in_the_html(built):
    html = built["html"]
    for chart in MART_CHARTS:
        assert f'id="chart-{chart}"' in html, chart
    assert 'id="kpis"' in html and 'id="ab-results"' in html and 'id="ab-srm"' in html
    for chart in ML_CHARTS:
        assert f'id="chart-{chart}"' in html, chart
    assert 'id="ml-metrics"' in html and "ml-empty" not in html


def test_kpis_describe_the_last_complete_day(built):
    with db.connect(built["database"]) as conn:
        days = db.read_sql(conn, "select distinct activity_date from marts.fct_dau_mau "
                                 "order by 1 desc limit 2")["activity_date"].tolist()
    newest, complete = days
    kpi_block = built["html"].split('id="kpis"')[1].split("</section>")[0]
    assert f"on {complete}, the last complete day" in kpi_block
    assert f"{newest}, is partial" in built["html"]


def test_sections_say_so_when_their_results_are_missing():
    assert 'id="ml-empty"' in report.ml_section(None)
    assert "No model run yet" in report.ml_section(None)
    assert 'id="ab-empty"' in report.ab_section(None)


def test_roc_area_matches_sklearn():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 5000).astype(float)
    scores = np.round(rng.random(5000) * 0.6 + labels * 0.3, 2)  # with ties
    points, auc = report.roc_points(labels, scores)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert points[0] == (0.0, 0.0) and points[-1] == (1.0, 1.0)
    assert len(points) <= report.ROC_POINTS


def test_charts_render_in_headless_chromium(built, tmp_path):
    url = built["path"].resolve().as_uri()
    dom = _run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:2000]
    attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    assert attributes.get("data-report-ready") == "true", "the report's script did not run"
    expected = len(MART_CHARTS) + len(ML_CHARTS)
    assert int(attributes["data-charts-expected"]) >= expected
    assert attributes["data-charts-failed"] == ""
    assert attributes["data-charts-rendered"] == attributes["data-charts-expected"]
    rendered = set(re.findall(r'<figure class="chart" id="chart-([\w-]+)" '
                              r'data-rendered="true"', dom.stdout))
    assert set(MART_CHARTS) <= rendered
    assert set(ML_CHARTS) <= rendered

    shot = tmp_path / "report.png"
    run = _run_chromium(tmp_path, "--window-size=1280,9000", f"--screenshot={shot}", url)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    output = config.ROOT / "output"
    output.mkdir(exist_ok=True)
    shutil.copy(shot, output / "report_screenshot.png")
