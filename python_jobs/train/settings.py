"""Training settings: python_jobs/train/defaults.yml, an optional --config file on top, then flags.

A --config file needs only the keys it changes (nested sections merge key by key).
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from python_jobs.train import features

DEFAULTS_FILE = Path(__file__).with_name("defaults.yml")


@dataclass(frozen=True)
class SkipSettings:
    sample_rows: int | None
    penalty: str
    C: float
    class_weight: str | None
    max_iter: int
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    challenger_max_iter: int = 0  # boosting rounds of the HistGradientBoosting challenger


@dataclass(frozen=True)
class DurationSettings:
    sample_rows: int | None
    k_features: int | str
    k_grid: tuple[int | str, ...]
    validation_days: int
    log_target: bool
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    challenger_max_iter: int = 0
    regressor: str = "linear"  # or poisson: a log-link GLM on seconds
    poisson_alpha: float = 1e-4
    max_iter: int = 1000


@dataclass(frozen=True)
class TrainSettings:
    test_days: int
    split_date: str | None
    chunk_rows: int
    prediction_runs_kept: int | None
    skip: SkipSettings
    duration: DurationSettings

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _k(value: Any) -> int | str:
    if isinstance(value, str) and value in ("all", "auto"):
        return value
    k = int(value)
    if k < 1:
        raise ValueError(f"k_features must be >= 1, 'all' or 'auto', not {value!r}")
    return k


def _rows(value: Any) -> int | None:
    if value in (None, 0, "null", "none"):
        return None
    return int(value)


def _check_skip_features(numeric: list[str], categorical: list[str]) -> None:
    """The skip model may use only what the SQL scoring model can score: dbt var
    skip_model_features (features.SKIP)."""
    catalogue = features.SKIP
    unknown = [f for f in numeric
               if f not in {*catalogue["numeric"], *catalogue["boolean"], *catalogue["derived"]}]
    unknown += [f for f in categorical if f not in catalogue["categorical"]]
    if unknown:
        raise ValueError(f"skip features {unknown} are not in dbt var skip_model_features "
                         "(dbt_project.yml): add them there first")


def from_dict(raw: dict[str, Any]) -> TrainSettings:
    skip, duration = raw["skip"], raw["duration"]
    _check_skip_features(skip["numeric_features"], skip["categorical_features"])
    if skip["penalty"] not in ("l2", "none"):
        raise ValueError(f"skip.penalty must be l2 or none, not {skip['penalty']!r}")
    if duration.get("regressor", "linear") not in ("linear", "poisson"):
        raise ValueError("duration.regressor must be linear or poisson, "
                         f"not {duration['regressor']!r}")
    if int(raw["test_days"]) < 1:
        raise ValueError("test_days must be >= 1")
    kept = raw.get("prediction_runs_kept")
    if kept is not None and int(kept) < 1:
        raise ValueError("prediction_runs_kept must be >= 1 (null keeps every run's)")
    return TrainSettings(
        test_days=int(raw["test_days"]),
        split_date=None if raw.get("split_date") is None else str(raw["split_date"]),
        chunk_rows=int(raw["chunk_rows"]),
        prediction_runs_kept=None if kept is None else int(kept),
        skip=SkipSettings(
            sample_rows=_rows(skip.get("sample_rows")), penalty=str(skip["penalty"]),
            C=float(skip["C"]), class_weight=skip.get("class_weight"),
            max_iter=int(skip["max_iter"]),
            numeric_features=tuple(skip["numeric_features"]),
            categorical_features=tuple(skip["categorical_features"]),
            challenger_max_iter=int(skip.get("challenger_max_iter") or 0)),
        duration=DurationSettings(
            sample_rows=_rows(duration.get("sample_rows")),
            k_features=_k(duration["k_features"]),
            k_grid=tuple(_k(k) for k in duration["k_grid"]),
            validation_days=int(duration["validation_days"]),
            log_target=bool(duration["log_target"]),
            numeric_features=tuple(duration["numeric_features"]),
            categorical_features=tuple(duration["categorical_features"]),
            challenger_max_iter=int(duration.get("challenger_max_iter") or 0),
            regressor=str(duration.get("regressor", "linear")),
            poisson_alpha=float(duration.get("poisson_alpha", 1e-4)),
            max_iter=int(duration.get("max_iter", 1000))),
    )


def load(config_file: str | Path | None = None,
         overrides: dict[str, Any] | None = None) -> TrainSettings:
    """Defaults, then the config file, then overrides (nested dicts, like the file)."""
    raw = yaml.safe_load(DEFAULTS_FILE.read_text())
    if config_file:
        raw = _merge(raw, yaml.safe_load(Path(config_file).read_text()) or {})
    if overrides:
        raw = _merge(raw, overrides)
    return from_dict(raw)


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file over python_jobs/train/defaults.yml")
    parser.add_argument("--C", type=float, dest="C", help="skip model: inverse L2 strength")
    parser.add_argument("--k-features", help="duration model: k of SelectKBest, all or auto")
    parser.add_argument("--test-days", type=int, help="last N days of each mart are held out")
    parser.add_argument("--split-date", help="first held-out day YYYY-MM-DD (beats --test-days)")
    parser.add_argument("--challenger-max-iter", type=int,
                        help="boosting rounds of the HistGradientBoosting challengers (0 = none)")
    parser.add_argument("--prediction-runs-kept", type=int,
                        help="newest runs per model whose held-out predictions are kept")
    parser.add_argument("--sample-rows", type=int,
                        help="cap on training rows (hash sample); 0 = no sampling; "
                             "applies to the model(s) being trained")


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"skip": {}, "duration": {}}
    if args.test_days is not None:
        out["test_days"] = args.test_days
    if args.split_date is not None:
        out["split_date"] = args.split_date
    if args.prediction_runs_kept is not None:
        out["prediction_runs_kept"] = args.prediction_runs_kept
    if args.C is not None:
        out["skip"]["C"] = args.C
    if args.k_features is not None:
        out["duration"]["k_features"] = args.k_features
    if args.challenger_max_iter is not None:
        out["skip"]["challenger_max_iter"] = args.challenger_max_iter
        out["duration"]["challenger_max_iter"] = args.challenger_max_iter
    if args.sample_rows is not None:
        out["skip"]["sample_rows"] = args.sample_rows
        out["duration"]["sample_rows"] = args.sample_rows
    return out
