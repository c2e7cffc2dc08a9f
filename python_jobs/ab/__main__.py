"""A/B testing command line.

    python -m python_jobs.ab design --metric proportion --baseline 0.30 --mde 0.02
    python -m python_jobs.ab design --metric mean --sd 12 --mde 0.5 [--baseline 40]
    python -m python_jobs.ab design --metric proportion --baseline 0.30 --n-per-arm 5000
    python -m python_jobs.ab analyze ...   (needs the experiment metrics mart: not wired yet)

`design` prints the users needed per arm for each --mde, or the minimum detectable effect for
each --n-per-arm (users in control; treatment gets ratio times as many). Two-sided tests;
proportions by Cohen's h (arcsine) with the normal distribution, means by the noncentral t.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from python_jobs import config
from python_jobs.ab import design


def _designs(args: argparse.Namespace) -> list[design.Design]:
    common = {"alpha": args.alpha, "power": args.power, "ratio": args.ratio}
    if args.metric == "proportion":
        if args.baseline is None:
            raise ValueError("--metric proportion needs --baseline (the control rate)")
        if args.n_per_arm:
            return [design.proportion_mde(args.baseline, n, **common) for n in args.n_per_arm]
        return [design.proportion_sample_size(args.baseline, m, **common) for m in args.mde]
    if args.sd is None:
        raise ValueError("--metric mean needs --sd (per-user standard deviation)")
    if args.n_per_arm:
        return [design.mean_mde(args.sd, n, baseline=args.baseline, **common)
                for n in args.n_per_arm]
    return [design.mean_sample_size(args.sd, m, baseline=args.baseline, **common)
            for m in args.mde]


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_table(designs: Sequence[design.Design]) -> str:
    """A plain-text table, one line per design."""
    header = ["metric", "baseline", "sd", "mde", "mde_rel", "effect", "alpha", "power",
              "ratio", "n_control", "n_treatment", "n_total"]
    lines = [[d.metric, _fmt(d.baseline, ".4g"), _fmt(d.sd, ".4g"), _fmt(d.mde, ".4g"),
              _fmt(d.relative_mde, ".2%"), f"{d.effect_size_kind[-1]}={d.effect_size:.4f}",
              f"{d.alpha:g}", f"{d.power:g}", f"{d.ratio:g}", f"{d.users_control:,}",
              f"{d.users_treatment:,}", f"{d.users_total:,}"] for d in designs]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
                     for row in [header, *lines])


def _design(args: argparse.Namespace) -> int:
    try:
        designs = _designs(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(designs))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    print("analyze needs the per-user experiment metrics mart, which is not built yet; "
          "python_jobs.ab.stats.analyze_metric() is the statistics it will call.",
          file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.ab",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("design", help="sample size per arm, or MDE for a given n per arm")
    plan.add_argument("--metric", choices=["proportion", "mean"], required=True)
    plan.add_argument("--baseline", type=float,
                      help="control rate (proportion, required) or control mean (mean, "
                           "optional: adds the relative MDE)")
    plan.add_argument("--sd", type=float, help="per-user standard deviation (mean)")
    target = plan.add_mutually_exclusive_group(required=True)
    target.add_argument("--mde", type=float, nargs="+",
                        help="absolute effect(s) to detect, treatment minus control")
    target.add_argument("--n-per-arm", type=float, nargs="+",
                        help="users in control (treatment: ratio times as many); prints the MDE")
    plan.add_argument("--alpha", type=float, default=0.05, help="two-sided (default 0.05)")
    plan.add_argument("--power", type=float, default=0.8, help="default 0.8")
    plan.add_argument("--ratio", type=float, default=1.0,
                      help="n_treatment / n_control (default 1)")
    plan.set_defaults(run=_design)

    analyze = sub.add_parser("analyze", help="analyse an experiment (needs the metrics mart)")
    analyze.add_argument("--experiment-id")
    config.add_common_args(analyze)
    analyze.set_defaults(run=_analyze)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
