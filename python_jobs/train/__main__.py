"""Train the skip and session-length models on the marts and write the results to schema ml.

    python -m python_jobs.train [--model skip|duration] [--config FILE] [--database D]
                                [--C 1.0] [--k-features auto|all|K] [--test-days 14]
                                [--split-date YYYY-MM-DD] [--sample-rows N]
    python -m python_jobs.train --init-only      # empty ml tables, nothing trained

Needs marts.fct_play_skip_features and marts.fct_session_training (dbt build). Each model
trained is one run appended to ml.model_runs, ml.model_metrics, ml.model_coefficients,
ml.model_predictions and ml.calibration (one transaction per run). Then `dbt build --selector
ml_scoring` builds the ml.latest_* views (the latest run of each model) and scores every play
in SQL with the latest skip model. Settings: python_jobs/train/defaults.yml (docs/models.md).

The marts are read from, and the runs written to, the engine dbt builds on: DBT_TARGET
(default postgres; spark = the in-process SparkSession, Spark database `ml`, docs/spark.md).
On Spark a run is not one transaction: the model_runs row is written last, so the latest_*
views never show a run that failed half-way. Peak memory counts this process, not Spark's JVM.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
from collections.abc import Sequence

import pandas as pd

from python_jobs import config, db, logs
from python_jobs.train import duration, settings, skip, store

log = logging.getLogger(__name__)

MODELS = {"skip": skip, "duration": duration}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_one(conn: db.Warehouse, name: str, train_settings: settings.TrainSettings,
              database: str | None = None) -> dict:
    """Train one model and append its run to schema ml (in the caller's transaction).
    `database`: the PostgreSQL database holding the generator's truth, for the oracle on the
    Spark target (on PostgreSQL the run's own connection)."""
    stamp = store.new_run(name)
    predictions = 0

    def sink(frame: pd.DataFrame) -> None:
        nonlocal predictions
        predictions += store.append_predictions(conn, frame, stamp)

    module = MODELS[name]
    outcome = module.run(conn, train_settings, sink, database)
    store.append(conn, "model_metrics", outcome["metrics"], stamp)
    store.append(conn, "model_coefficients", outcome["terms"], stamp)
    if outcome["calibration"] is not None:
        store.append(conn, "calibration", outcome["calibration"], stamp)
    full = train_settings.as_dict()
    run_config = {"test_days": full["test_days"], "split_date": full["split_date"],
                  "chunk_rows": full["chunk_rows"], name: full[name],
                  "fit": {k: outcome["info"][k] for k in ("k_selected", "iterations")
                          if k in outcome["info"]}}
    run = store.run_row(stamp, outcome, run_config, module.SOURCE.table, peak_rss_mb())
    store.append(conn, "model_runs", run, {})
    pruned = store.prune_predictions(conn, name, train_settings.prediction_runs_kept)
    outcome.update({"stamp": stamp, "prediction_rows": predictions, "pruned_rows": pruned})
    return outcome


def _fmt(value: float) -> str:
    return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.1f}"


def summary(name: str, outcome: dict) -> str:
    """Plain-text report of one run: data, sampling, metrics, top terms."""
    info, window = outcome["info"], outcome["window"]
    lines = [f"== {name} model  run {outcome['stamp']['run_id']}",
             f"   {info['estimator']}",
             *([f"   challenger: {info['challenger']}"] if info.get("challenger") else []),
             f"   target: {info['target']}",
             f"   train {window.train_start}..{window.train_end}: {info['train_rows']:,} rows "
             f"of {info['train_population_rows']:,} ({info['sample_method']})",
             f"   test  {window.test_start}..{window.test_end}: {info['test_rows']:,} rows "
             "(held-out days, every row scored)",
             *([f"   held-out predictions of older runs removed: {outcome['pruned_rows']:,} "
                "rows (prediction_runs_kept)"] if outcome["pruned_rows"] else [])]
    metrics = outcome["metrics"]
    wide = metrics.pivot_table(index="metric", columns="split", values="value", sort=False)
    lines.append("   metric                      " + "".join(f"{c:>14}" for c in wide.columns))
    for metric, row in wide.iterrows():
        lines.append(f"   {metric:<28}" + "".join(
            f"{'' if pd.isna(v) else _fmt(v):>14}" for v in row))
    lines += beside_oracle(metrics)
    calibration = outcome["calibration"]
    if calibration is not None:
        lines.append("   calibration (held-out deciles): bin  rows  mean_predicted  observed")
        for row in calibration[calibration["split"] == "test"].itertuples():
            lines.append(f"      {row.bin:>3} {row.row_count:>9,} {row.mean_predicted:>10.4f}"
                         f" {row.observed_rate:>10.4f}")
    terms = outcome["terms"]
    top = terms[terms["term_kind"] != "intercept"].nlargest(12, "importance")
    lines.append("   largest standardized coefficients:")
    for row in top.itertuples():
        lines.append(f"      {row.term:<48} {row.coefficient:+.4f}")
    return "\n".join(lines)


SIDE_BY_SIDE = ("roc_auc", "log_loss", "brier", "calibration_max_gap", "r2", "mae_seconds",
                "rmse_seconds")


def beside_oracle(metrics: pd.DataFrame) -> list[str]:
    """Held-out metrics of the model, its challenger and the generator's oracle side by side,
    with the share of the oracle gap each closed (docs/models.md)."""
    test = metrics[metrics["split"] == "test"].set_index("metric")["value"]
    if test.get("oracle_available", 0.0) == 0.0:
        return ["   oracle: the data carry no generator truth (real data): skipped"]
    lines = [f"   held-out vs the generator's oracle ({int(test['oracle_rows']):,} rows with "
             "truth)", "   metric                  model  challenger      oracle   "
             "gap closed (model, challenger)"]
    for metric in SIDE_BY_SIDE:
        if metric not in test or f"oracle_{metric}" not in test:
            continue
        closed = [test.get(f"{p}oracle_gap_closed_{metric}") for p in ("", "challenger_")]
        closed_text = ", ".join("" if v is None or pd.isna(v) else f"{v:.1%}" for v in closed)
        rival = test.get(f"challenger_{metric}")
        lines.append(f"   {metric:<20} {_fmt(test[metric]):>10} "
                     f"{'' if rival is None else _fmt(rival):>11} "
                     f"{_fmt(test[f'oracle_{metric}']):>11}   {closed_text}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.train",
                                     description=__doc__.split("\n\n")[0])
    config.add_common_args(parser)
    parser.add_argument("--model", choices=sorted(MODELS), help="train one model (default both)")
    parser.add_argument("--init-only", action="store_true",
                        help="create the ml schema and tables, train nothing")
    settings.add_args(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level)
    try:
        train_settings = settings.load(args.config, settings.overrides_from_args(args))
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"error: bad settings: {error}", file=sys.stderr)
        return 2
    names = [args.model] if args.model else list(MODELS)
    target = db.dbt_target()
    with db.connect(args.database, target) as conn:
        store.ensure_schema(conn)
    if args.init_only:
        print("ml schema ready (empty tables); nothing trained")
        return 0
    for name in names:
        try:
            with db.connect(args.database, target) as conn:
                outcome = train_one(conn, name, train_settings, args.database)
        except LookupError as error:
            print(f"error: {name}: {error}", file=sys.stderr)
            return 1
        print(summary(name, outcome), flush=True)
    print(f"peak memory (max RSS of this process): {peak_rss_mb():,.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
