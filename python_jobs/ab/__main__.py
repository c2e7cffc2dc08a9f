"""A/B testing command line.

    python -m python_jobs.ab design --metric proportion --baseline 0.30 --mde 0.02
    python -m python_jobs.ab design --metric mean --sd 12 --mde 0.5 [--baseline 40]
    python -m python_jobs.ab design --metric proportion --baseline 0.30 --n-per-arm 5000
    python -m python_jobs.ab design --metric ratio --mean-num 5 --mean-den 20 --sd-num 6 \
        --sd-den 18 --corr 0.8 --mde -0.01 [--variance-reduction 0.3] [--daily-units 500]
    python -m python_jobs.ab design --metric proportion --baseline 0.45 --margin 0.02
    python -m python_jobs.ab analyze --experiment exp_skip_reco [--report output/ab]
    python -m python_jobs.ab analyze --all [--database D] [--alpha 0.05] [--sequential ...]
    python -m python_jobs.ab analyze --from-file players.csv --experiment NAME \
        --unit-column userid --variant-column version --control gate_30 \
        --metric retention_7:proportion --metric rounds:mean:sum_gamerounds [--cap rounds:p99.9]
    python -m python_jobs.ab analyze --from-table schema.name ... (the same flags)
    python -m python_jobs.ab assign --experiment exp_skip_reco [--sessions-table marts.fct_sessions]

`design` prints the users needed per arm for each --mde, or the minimum detectable effect for
each --n-per-arm (users in control; treatment gets ratio times as many). Two-sided tests;
proportions by Cohen's h (arcsine) with the normal distribution, means by the noncentral t,
ratios by the delta method with a z-test; --variance-reduction shrinks the sd for CUPED,
--margin plans a one-sided non-inferiority test, --daily-units adds the days of enrolment.

`analyze` reads marts.fct_experiment_user_metrics (dbt build --select
+fct_experiment_user_metrics first) with the metrics and families of metrics.yml, or any
per-unit file or warehouse table with metrics from the flags; appends one run to
ab.experiment_results, ab.srm_checks, ab.runs (and, for the mart, the daily sequential monitor
ab.experiment_daily_sequential), prints the results and writes a markdown report per
experiment (python_jobs/ab/analyze.py). Bad input: one line on stderr, exit status 2. It works
on the engine dbt builds on: DBT_TARGET (default postgres; spark = Spark database `ab`).
`assign` writes raw tables, which live in PostgreSQL only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pandas as pd

from python_jobs import config, db, logs
from python_jobs.ab import analyze, assign, design, inputs, metrics


def _designs(args: argparse.Namespace) -> list[design.Design]:
    common = {"alpha": args.alpha, "power": args.power, "ratio": args.ratio}
    reduction = args.variance_reduction or 0.0
    if args.margin is None and not (args.mde or args.n_per_arm):
        raise ValueError("give --mde or --n-per-arm (or --margin for non-inferiority)")
    if args.margin is not None and args.n_per_arm:
        raise ValueError("--margin plans a sample size: give --mde (the true effect), not "
                         "--n-per-arm")
    if args.margin is not None:
        sd = args.sd
        if args.metric == "proportion":
            if args.baseline is None:
                raise ValueError("--metric proportion needs --baseline (the control rate)")
            sd = (args.baseline * (1 - args.baseline)) ** 0.5
        if sd is None:
            raise ValueError("--margin needs --sd (or --metric proportion with --baseline)")
        return [design.noninferiority_sample_size(design.cuped_sd(sd, reduction), args.margin,
                                                  true_effect=m, baseline=args.baseline,
                                                  **common) for m in (args.mde or [0.0])]
    if args.metric == "proportion":
        if args.baseline is None:
            raise ValueError("--metric proportion needs --baseline (the control rate)")
        if args.n_per_arm:
            return [design.proportion_mde(args.baseline, n, **common) for n in args.n_per_arm]
        return [design.proportion_sample_size(args.baseline, m, **common) for m in args.mde]
    if args.metric == "ratio":
        parts = (args.mean_num, args.mean_den, args.sd_num, args.sd_den)
        if any(p is None for p in parts):
            raise ValueError("--metric ratio needs --mean-num, --mean-den, --sd-num, --sd-den "
                             "(and --corr)")
        ratio_args = (*parts, args.corr)
        if args.n_per_arm:
            return [design.ratio_mde(*ratio_args, n, variance_reduction=reduction, **common)
                    for n in args.n_per_arm]
        return [design.ratio_sample_size(*ratio_args, m, variance_reduction=reduction,
                                         **common) for m in args.mde]
    if args.sd is None:
        raise ValueError("--metric mean needs --sd (per-user standard deviation)")
    sd = design.cuped_sd(args.sd, reduction)
    if args.n_per_arm:
        return [design.mean_mde(sd, n, baseline=args.baseline, **common)
                for n in args.n_per_arm]
    return [design.mean_sample_size(sd, m, baseline=args.baseline, **common)
            for m in args.mde]


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_table(designs: Sequence[design.Design], daily_units: float | None = None) -> str:
    """A plain-text table, one line per design (with the days of enrolment when the daily
    units are known)."""
    header = ["metric", "baseline", "sd", "mde", "mde_rel", "effect", "alpha", "power",
              "ratio", "n_control", "n_treatment", "n_total"]
    if daily_units:
        header.append("days")
    lines = []
    for d in designs:
        line = [d.metric, _fmt(d.baseline, ".4g"), _fmt(d.sd, ".4g"), _fmt(d.mde, ".4g"),
                _fmt(d.relative_mde, ".2%"), f"{d.effect_size_kind[-1]}={d.effect_size:.4f}",
                f"{d.alpha:g}", f"{d.power:g}", f"{d.ratio:g}", f"{d.users_control:,}",
                f"{d.users_treatment:,}", f"{d.users_total:,}"]
        if daily_units:
            line.append(str(design.duration_days(d, daily_units)))
        lines.append(line)
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
                     for row in [header, *lines])


def _design(args: argparse.Namespace) -> int:
    try:
        designs = _designs(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(designs, args.daily_units))
    return 0


PRINTED = ("metric", "metric_role", "method", "variant", "n", "value", "value_control",
           "effect", "ci_low", "ci_high", "p_value", "adjustment_family", "p_value_holm",
           "harm_p_value", "noninferiority_p_value", "chance_to_beat_control",
           "expected_loss", "p_value_sequential", "ci_low_sequential", "ci_high_sequential",
           "cap_value", "capped_units", "capped_units_control")
OPTIONAL = ("noninferiority_p_value", "p_value_sequential", "ci_low_sequential",
            "ci_high_sequential", "cap_value", "capped_units", "capped_units_control")


def print_results(results, style: str = "table") -> None:
    """The treatment rows of one experiment: a readable table (columns that are empty for
    every row left out), or CSV with every digit and every column."""
    rows = results[~results["is_control"].astype(bool)].reindex(columns=list(PRINTED))
    for column in PRINTED[4:]:
        if column not in ("adjustment_family",):
            rows[column] = pd.to_numeric(rows[column], errors="coerce")
    if style == "csv":
        print(rows.to_csv(index=False, float_format="%.17g"), end="")
        return
    empty = [c for c in OPTIONAL if rows[c].isna().all()]
    if rows["cap_value"].isna().all():  # no metric is capped: the counts say nothing
        empty += ["capped_units", "capped_units_control"]
    print(rows.drop(columns=empty).to_string(index=False, float_format=lambda x: f"{x:.6g}",
                                             na_rep="-"))


def _options(args: argparse.Namespace) -> analyze.Options:
    return analyze.Options(alpha=args.alpha, prior_sd=args.prior_sd,
                           sequential=args.sequential, looks=args.looks, look=args.look,
                           spending=args.spending, tuning=args.tuning,
                           planned_units=args.planned_units)


def _outside(args: argparse.Namespace) -> int:
    """--from-file / --from-table: one experiment from a per-unit table."""
    if not args.experiment or len(args.experiment) != 1:
        raise inputs.InputError("--from-file/--from-table need one --experiment NAME")
    definitions = metrics.load(args.metrics_file)["metrics"] if args.metrics_file else None
    plan = metrics.plan_from_flags(
        args.metric or [], caps=args.cap, covariates=args.covariate,
        directions=args.direction, margins=args.margin, goal=args.goal or (),
        guardrails=args.guardrail or (), secondary=args.secondary or (),
        definitions=definitions)
    experiment_id = args.experiment[0]
    run_id, run_at = analyze.new_run()

    def analysed(units, source: str) -> dict:
        return analyze.analyze_units(units, experiment_id, plan, control=args.control,
                                     source=source, run_id=run_id, run_at=run_at,
                                     weights=args.weights, options=_options(args),
                                     srm_threshold=args.srm_threshold)

    outcome = None
    if args.from_file:  # read and analyse before connecting: bad input never opens the DB
        units = inputs.read_file(args.from_file, plan, args.unit_column, args.variant_column)
        outcome = analysed(units, str(args.from_file))
    with db.connect(args.database, db.dbt_target()) as conn:
        if outcome is None:
            units = inputs.read_table(conn, args.from_table, plan, args.unit_column,
                                      args.variant_column)
            outcome = analysed(units, args.from_table)
        analyze.finish(conn, [outcome], args.report, single=True)
    _summary(outcome)
    if args.print != "none":
        print_results(outcome["results"], args.print)
    print(f"run {run_id}")
    return 0


def _summary(outcome: dict) -> None:
    run = outcome["run"]
    srm = "SRM MISMATCH" if run["is_srm_mismatch"] else "srm ok"
    significant = outcome["results"].query("is_significant == True")
    print(f"{run['experiment_id']}: {run['user_count']} units, {srm}, "
          f"{len(significant)} significant rows, report {run['report_path']}")


def _analyze(args: argparse.Namespace) -> int:
    logs.setup(args.log_level)
    try:
        if args.from_file or args.from_table:
            return _outside(args)
        if any([args.metric, args.cap, args.covariate, args.goal, args.guardrail,
                args.secondary]):
            raise inputs.InputError("--metric, --cap, --covariate and the roles go with "
                                    "--from-file or --from-table; mart metrics live in "
                                    "--metrics-file (default python_jobs/ab/metrics.yml)")
    except (inputs.InputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.all and not args.experiment:
        print(f"error: give --experiment NAME or --all (experiments of the metrics mart "
              f"{analyze.USER_METRICS}), or --from-file / --from-table", file=sys.stderr)
        return 2
    with db.connect(args.database, db.dbt_target()) as conn:
        known = analyze.experiment_ids(conn)
        experiments = known if args.all else args.experiment
        missing = sorted(set(experiments) - set(known))
        if missing:
            print(f"error: no enrolled users in {analyze.USER_METRICS} for "
                  f"{', '.join(missing)}", file=sys.stderr)
            return 2
        try:
            run_id, outcomes = analyze.run(conn, experiments, report_path=args.report,
                                           srm_threshold=args.srm_threshold,
                                           options=_options(args),
                                           metrics_file=args.metrics_file,
                                           control=args.control)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    for outcome in outcomes:
        _summary(outcome)
        if args.print != "none":
            print_results(outcome["results"], args.print)
    print(f"run {run_id}")
    return 0


def _assign(args: argparse.Namespace) -> int:
    logs.setup(args.log_level)
    with db.connect(args.database) as conn:
        for experiment_id in args.experiment:
            try:
                rows = assign.assign_experiment(conn, experiment_id, args.sessions_table)
            except ValueError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            print(f"{experiment_id}: {rows} assignments written")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.ab",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("design", help="sample size per arm, or MDE for a given n per arm")
    plan.add_argument("--metric", choices=["proportion", "mean", "ratio"], required=True)
    plan.add_argument("--baseline", type=float,
                      help="control rate (proportion, required) or control mean (mean, "
                           "optional: adds the relative MDE)")
    plan.add_argument("--sd", type=float, help="per-user standard deviation (mean)")
    for flag, words in (("--mean-num", "ratio: mean numerator per unit"),
                        ("--mean-den", "ratio: mean denominator per unit"),
                        ("--sd-num", "ratio: sd of the numerator per unit"),
                        ("--sd-den", "ratio: sd of the denominator per unit")):
        plan.add_argument(flag, type=float, help=words)
    plan.add_argument("--corr", type=float, default=0.0,
                      help="ratio: correlation of numerator and denominator (default 0)")
    plan.add_argument("--variance-reduction", type=float,
                      help="CUPED's expected variance reduction (squared correlation with the "
                           "covariates, 0..1) for mean and ratio metrics")
    plan.add_argument("--margin", type=float,
                      help="non-inferiority margin (absolute): one-sided test, --mde is the "
                           "true effect (default 0)")
    plan.add_argument("--daily-units", type=float,
                      help="new units per day over all arms: adds the days of enrolment")
    target = plan.add_mutually_exclusive_group(required=False)
    target.add_argument("--mde", type=float, nargs="+",
                        help="absolute effect(s) to detect, treatment minus control")
    target.add_argument("--n-per-arm", type=float, nargs="+",
                        help="users in control (treatment: ratio times as many); prints the MDE")
    plan.add_argument("--alpha", type=float, default=0.05, help="two-sided (default 0.05)")
    plan.add_argument("--power", type=float, default=0.8, help="default 0.8")
    plan.add_argument("--ratio", type=float, default=1.0,
                      help="n_treatment / n_control (default 1)")
    plan.set_defaults(run=_design)

    run = sub.add_parser("analyze", help="analyse experiments from the metrics mart, a file "
                                         "or a warehouse table")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--experiment", "--experiment-id", action="append",
                       help="experiment id (repeatable; with --from-file/--from-table the name "
                            "the results are written under)")
    which.add_argument("--all", action="store_true", help="every experiment in the mart")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--from-file", help="CSV or Parquet file, one row per unit")
    source.add_argument("--from-table", help="schema.name of a warehouse table or view, one "
                                             "row per unit")
    run.add_argument("--unit-column", default="unit_id", help="unit id column (default unit_id)")
    run.add_argument("--variant-column", default="variant",
                     help="arm column (default variant)")
    run.add_argument("--control", default="control",
                     help="the control arm, any arm of the experiment (default control)")
    run.add_argument("--metric", action="append",
                     help="NAME:KIND[:COLUMN], KIND proportion|mean|ratio (ratio: "
                          "NAME:ratio:NUM/DEN); or a NAME of --metrics-file (repeatable)")
    run.add_argument("--cap", action="append", help="NAME:p99.5 (percentile of the pooled "
                                                    "values) or NAME:500 (absolute)")
    run.add_argument("--covariate", action="append",
                     help="NAME:COL[,COL] pre-period covariates for CUPED")
    run.add_argument("--direction", action="append", help="NAME:decrease when lower is better")
    run.add_argument("--margin", action="append",
                     help="NAME:0.01 non-inferiority margin, relative to the control value")
    run.add_argument("--goal", action="append", help="goal (primary) metric (repeatable; "
                                                     "default: every metric)")
    run.add_argument("--guardrail", action="append", help="guardrail metric (repeatable)")
    run.add_argument("--secondary", action="append", help="secondary metric (repeatable)")
    run.add_argument("--weights", help="planned allocation NAME=W,NAME=W for the SRM check "
                                       "(default equal)")
    run.add_argument("--metrics-file", help="metrics YAML (default python_jobs/ab/metrics.yml)")
    run.add_argument("--report", help="report folder, or a .md file for one experiment "
                                      "(default output/ab)")
    run.add_argument("--alpha", type=float, default=0.05, help="two-sided (default 0.05)")
    run.add_argument("--srm-threshold", type=float, default=0.001,
                     help="flag a sample ratio mismatch below this p-value (default 0.001)")
    run.add_argument("--prior-sd", type=float,
                     help="sd of a normal prior N(0, sd^2) on the relative lift for the "
                          "Bayesian read-out (default: flat prior)")
    run.add_argument("--sequential", choices=["always_valid", "group"],
                     help="add the sequential read-out of this look")
    run.add_argument("--looks", type=int, default=1, help="group: planned looks (equal steps)")
    run.add_argument("--look", type=int, default=1, help="group: this look (1..looks)")
    run.add_argument("--spending", choices=["obrien_fleming", "pocock"],
                     default="obrien_fleming", help="group: alpha spending function")
    run.add_argument("--tuning", type=float, default=5000.0,
                     help="always_valid: units where the confidence sequence is tightest "
                          "(GrowthBook's default 5000)")
    run.add_argument("--planned-units", type=float,
                     help="daily monitor: planned units of a compared pair (control plus "
                          "one variant), so a running "
                          "experiment's information fractions stay put (default: the last "
                          "day's units)")
    run.add_argument("--print", choices=["table", "csv", "none"], default="table",
                     help="results on stdout: a table, CSV with every digit, or none")
    config.add_common_args(run)
    run.set_defaults(run=_analyze)

    recompute = sub.add_parser("assign", help="recompute assignments into "
                                              "raw.experiment_assignments (idempotent)")
    recompute.add_argument("--experiment", action="append", required=True,
                           help="experiment id (repeatable)")
    recompute.add_argument("--sessions-table", default=assign.DEFAULT_SESSIONS_TABLE,
                           help="schema.table with user_id and session_started_at "
                                "(default marts.fct_sessions)")
    config.add_common_args(recompute)
    recompute.set_defaults(run=_assign)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
