"""Metric definitions as data (metrics.yml or --metric flags), decision roles, and capping.

A Metric says how to get per-unit values from a per-unit table; a Plan says which metrics
are an experiment's goal (primary) metrics, guardrails and secondary metrics. Capping
(winsorisation) is applied per metric before any test; the threshold of a percentile cap is
the quantile of the pooled pre-cap values of every arm (numpy's default linear
interpolation), so all arms are cut at the same value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

DEFAULT_FILE = Path(__file__).with_name("metrics.yml")
KINDS = ("proportion", "mean", "ratio")
ROLES = ("goal", "guardrail", "secondary")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Cap:
    """Winsorise at an absolute value, or at a quantile (0 < percentile < 1) of the pooled
    pre-cap values."""

    absolute: float | None = None
    percentile: float | None = None

    def describe(self) -> str:
        if self.absolute is not None:
            return f"absolute {self.absolute:g}"
        return f"percentile {self.percentile:g}"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    column: str | None = None  # proportion, mean
    numerator: str | None = None  # ratio
    denominator: str | None = None  # ratio
    covariates: tuple[str, ...] = ()
    cap: Cap | None = None
    direction: str = "increase"
    margin: float | None = None  # non-inferiority margin, relative to the control value
    label: str | None = None
    description: str | None = None

    @property
    def expressions(self) -> tuple[str, ...]:
        """Every column or expression the metric reads (value(s) first, then covariates)."""
        own = (self.numerator, self.denominator) if self.kind == "ratio" else (self.column,)
        return (*own, *self.covariates)

    def output_name(self, first_row: Mapping[str, object] | None = None) -> str:
        if not self.label:
            return self.name
        return self.label.format(**(first_row or {}))


@dataclass(frozen=True)
class Plan:
    """An experiment's metrics by role; `roles` maps metric name -> goal|guardrail|secondary."""

    metrics: tuple[Metric, ...]
    roles: dict[str, str] = field(default_factory=dict)

    def role(self, metric: str) -> str:
        return self.roles.get(metric, "goal")


def _cap(spec: object, name: str) -> Cap | None:
    if spec is None:
        return None
    if isinstance(spec, str):  # "p99.5" or "500"
        text = spec.strip().lower()
        if text.startswith("p"):
            return _cap({"percentile": round(float(text[1:]) / 100, 12)}, name)
        return _cap({"absolute": float(text)}, name)
    if not isinstance(spec, Mapping) or len(spec) != 1 or not {"absolute", "percentile"} >= set(
            spec):
        raise ValueError(f"metric {name}: cap needs one of absolute: X or percentile: q")
    if "percentile" in spec:
        q = float(spec["percentile"])
        if not 0 < q < 1:
            raise ValueError(f"metric {name}: cap percentile must lie in (0, 1), got {q}")
        return Cap(percentile=q)
    return Cap(absolute=float(spec["absolute"]))


def metric_from_dict(name: str, spec: Mapping[str, object]) -> Metric:
    known = {"kind", "column", "numerator", "denominator", "covariates", "cap", "direction",
             "margin", "label", "description", "guardrail"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"metric {name}: unknown field(s) {', '.join(unknown)}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"metric {name}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "ratio" and not (spec.get("numerator") and spec.get("denominator")):
        raise ValueError(f"metric {name}: a ratio needs numerator and denominator")
    if kind != "ratio" and not spec.get("column"):
        raise ValueError(f"metric {name}: kind {kind} needs a column")
    if kind == "proportion" and spec.get("cap") is not None:
        raise ValueError(f"metric {name}: a proportion is 0/1 per unit, there is nothing to cap")
    direction = spec.get("direction", "increase")
    if direction not in ("increase", "decrease"):
        raise ValueError(f"metric {name}: direction must be increase or decrease")
    covariates = spec.get("covariates") or ()
    if isinstance(covariates, str):
        covariates = (covariates,)
    margin = spec.get("margin")
    if margin is not None and not float(margin) >= 0:
        raise ValueError(f"metric {name}: margin must be >= 0")
    return Metric(name=name, kind=str(kind), column=spec.get("column"),
                  numerator=spec.get("numerator"), denominator=spec.get("denominator"),
                  covariates=tuple(str(c) for c in covariates), cap=_cap(spec.get("cap"), name),
                  direction=str(direction),
                  margin=None if margin is None else float(margin), label=spec.get("label"),
                  description=spec.get("description"))


def load(path: str | Path | None = None) -> dict:
    """{'metrics': {name: Metric}, 'experiments': {id: {role: [metric, ...]}}} from YAML."""
    raw = yaml.safe_load(Path(path or DEFAULT_FILE).read_text()) or {}
    metrics = {name: metric_from_dict(name, spec or {})
               for name, spec in (raw.get("metrics") or {}).items()}
    experiments = {}
    for experiment, roles in (raw.get("experiments") or {}).items():
        experiments[experiment] = _roles(roles or {}, metrics, experiment)
    # a metric may declare itself a guardrail of every experiment that does not say otherwise
    guardrails = {name for name, spec in (raw.get("metrics") or {}).items()
                  if (spec or {}).get("guardrail")}
    for roles in experiments.values():
        for name in guardrails:
            roles.setdefault(name, "guardrail")
    return {"metrics": metrics, "experiments": experiments, "guardrails": guardrails}


def _roles(spec: Mapping[str, Sequence[str]], metrics: Mapping[str, Metric],
           where: str) -> dict[str, str]:
    unknown_roles = sorted(set(spec) - {"goal", "guardrails", "secondary"})
    if unknown_roles:
        raise ValueError(f"{where}: unknown role(s) {', '.join(unknown_roles)} "
                         "(use goal, guardrails, secondary)")
    roles: dict[str, str] = {}
    for key, role in (("goal", "goal"), ("guardrails", "guardrail"),
                      ("secondary", "secondary")):
        for name in spec.get(key) or ():
            if name not in metrics:
                raise ValueError(f"{where}: unknown metric {name!r}")
            if name in roles:
                raise ValueError(f"{where}: metric {name!r} has two roles")
            roles[name] = role
    return roles


def plan_for(definitions: dict, experiment_id: str) -> Plan:
    """The experiment's plan from loaded definitions: its declared roles, or every metric a
    goal metric when it declares none."""
    metrics = definitions["metrics"]
    roles = definitions["experiments"].get(experiment_id)
    if not roles:
        guardrails = definitions.get("guardrails", set())
        return Plan(tuple(metrics.values()),
                    {m: "guardrail" if m in guardrails else "goal" for m in metrics})
    return Plan(tuple(metrics[m] for m in metrics if m in roles), roles)


def parse_metric_flag(text: str) -> Metric:
    """NAME:KIND[:COLUMN] (COLUMN defaults to NAME; ratios: NAME:ratio:NUM/DEN)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"--metric {text!r}: use NAME:KIND[:COLUMN]")
    name, kind = parts[0], parts[1]
    column = parts[2] if len(parts) == 3 else name
    if kind == "ratio":
        if "/" not in column:
            raise ValueError(f"--metric {text!r}: a ratio needs NAME:ratio:NUMERATOR/DENOMINATOR")
        num, den = column.split("/", 1)
        return metric_from_dict(name, {"kind": kind, "numerator": num, "denominator": den})
    return metric_from_dict(name, {"kind": kind, "column": column})


def _pairs(flags: Iterable[str] | None, option: str) -> list[tuple[str, str]]:
    out = []
    for text in flags or ():
        name, sep, value = text.partition(":")
        if not sep or not name or not value:
            raise ValueError(f"{option} {text!r}: use NAME:VALUE")
        out.append((name, value))
    return out


def plan_from_flags(metric_flags: Sequence[str], *, caps: Iterable[str] | None = None,
                    covariates: Iterable[str] | None = None,
                    directions: Iterable[str] | None = None,
                    margins: Iterable[str] | None = None, goal: Sequence[str] = (),
                    guardrails: Sequence[str] = (), secondary: Sequence[str] = (),
                    definitions: Mapping[str, Metric] | None = None) -> Plan:
    """A plan from the command line: --metric flags (or names of `definitions`), then
    per-metric --cap NAME:p99|NAME:500, --covariate NAME:COL[,COL], --direction
    NAME:decrease, --margin NAME:0.01, and the roles (default: every metric a goal)."""
    metrics: dict[str, Metric] = {}
    for text in metric_flags:
        if ":" not in text and definitions and text in definitions:
            metric = definitions[text]
        else:
            metric = parse_metric_flag(text)
        if metric.name in metrics:
            raise ValueError(f"--metric {metric.name} given twice")
        metrics[metric.name] = metric
    if not metrics:
        raise ValueError("give at least one --metric NAME:KIND[:COLUMN]")

    def known(name: str, option: str) -> Metric:
        if name not in metrics:
            raise ValueError(f"{option} {name}: no such --metric")
        return metrics[name]

    for name, value in _pairs(caps, "--cap"):
        if known(name, "--cap").kind == "proportion":
            raise ValueError(f"--cap {name}: a proportion is 0/1 per unit, there is nothing "
                             "to cap")
        metrics[name] = replace(known(name, "--cap"), cap=_cap(value, name))
    for name, value in _pairs(covariates, "--covariate"):
        cols = tuple(c for c in value.split(",") if c)
        metrics[name] = replace(known(name, "--covariate"),
                                covariates=known(name, "--covariate").covariates + cols)
    for name, value in _pairs(directions, "--direction"):
        if value not in ("increase", "decrease"):
            raise ValueError(f"--direction {name}:{value}: use increase or decrease")
        metrics[name] = replace(known(name, "--direction"), direction=value)
    for name, value in _pairs(margins, "--margin"):
        metrics[name] = replace(known(name, "--margin"), margin=float(value))
    spec = {"goal": list(goal), "guardrails": list(guardrails), "secondary": list(secondary)}
    roles = _roles(spec, metrics, "roles")
    if not roles:
        roles = {m: "goal" for m in metrics}
    missing = [m for m in metrics if m not in roles]
    if missing:
        raise ValueError(f"metric(s) {', '.join(missing)} have no role: give --goal, "
                         "--guardrail or --secondary for each, or none at all")
    return Plan(tuple(metrics.values()), roles)


@dataclass(frozen=True)
class Capped:
    values: dict[str, np.ndarray]
    threshold: float | None
    capped_units: dict[str, np.ndarray]  # per arm: True where the value was lowered


def cap_values(values: Mapping[str, np.ndarray], cap: Cap | None) -> Capped:
    """Winsorise every arm's values at one threshold: `cap.absolute`, or the `cap.percentile`
    quantile of the pooled pre-cap values of all arms. Only the upper tail is cut (counts and
    durations have long right tails; a lower cap would need a reason)."""
    if cap is None:
        return Capped(dict(values), None, {v: np.zeros(len(x), bool) for v, x in values.items()})
    if cap.absolute is not None:
        threshold = float(cap.absolute)
    else:
        pooled = np.concatenate([np.asarray(x, float) for x in values.values()])
        threshold = float(np.quantile(pooled, cap.percentile))
    out, flags = {}, {}
    for v, x in values.items():
        x = np.asarray(x, float)
        flags[v] = x > threshold
        out[v] = np.minimum(x, threshold)
    return Capped(out, threshold, flags)
