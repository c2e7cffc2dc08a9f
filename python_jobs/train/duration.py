"""Session-length model: feature selection + linear regression on marts.fct_session_training.

Pipeline: ColumnTransformer (mean-imputed, standardized numerics; one-hot categoricals) ->
SelectKBest(f_regression, k) -> a linear model. regressor "poisson": PoissonRegressor, a
log-link GLM fitted on seconds (E[seconds] = exp(linear predictor), the multiplicative form
the generator plants, with no retransformation bias); "linear": LinearRegression on
duration_seconds or, with log_target, on log(1 + seconds) mapped back with Duan's smearing
factor. Every prediction and metric is in seconds. k = "auto" picks k on the last
validation_days of the training days only.

Naive baseline: the user's mean session length before this session
(user_prior_mean_duration_seconds, point in time), else the training mean.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_selection import SelectKBest, f_regression
from sklearn.linear_model import LinearRegression, PoissonRegressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from python_jobs.train import data, features, oracle
from python_jobs.train.settings import DurationSettings, TrainSettings

log = logging.getLogger(__name__)

SOURCE = data.Source(table="marts.fct_session_training", keys=("session_id",),
                     date_column="session_date", label="duration_seconds")
BASELINE = "user_prior_mean_duration_seconds"

PredictionSink = Callable[[pd.DataFrame], None]


def regressor(s: DurationSettings) -> LinearRegression | PoissonRegressor:
    if s.regressor == "poisson":
        # Newton steps to a tight tolerance, not lbfgs's default 1e-4: stopping early leaves
        # the fit dependent on the last bits of its inputs, and the engines' ln and division
        # of the history columns differ there (Spark vs PostgreSQL fits must agree to 1e-9).
        return PoissonRegressor(alpha=s.poisson_alpha, max_iter=s.max_iter,
                                solver="newton-cholesky", tol=1e-10)
    return LinearRegression()


def dense(x: Any) -> np.ndarray:
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


def selection(s: DurationSettings, k: int | str) -> Pipeline:
    """The steps after the encoding: SelectKBest, then the regressor on a dense array (the
    selected columns of a session are few; Newton's Hessian X'WX runs in BLAS on a dense
    array, about twice as fast as on the sparse one)."""
    return Pipeline([("select", SelectKBest(f_regression, k=k)),
                     ("dense", FunctionTransformer(dense, accept_sparse=True)),
                     ("model", regressor(s))])


def is_log_target(s: DurationSettings) -> bool:
    return s.log_target and s.regressor == "linear"


def numeric_read(s: DurationSettings) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*s.numeric_features, BASELINE)))


def feature_frame(frame: pd.DataFrame, s: DurationSettings) -> pd.DataFrame:
    return frame[[*s.numeric_features, *s.categorical_features]]


def encoded_width(frame: pd.DataFrame, s: DurationSettings) -> int:
    return len(s.numeric_features) + sum(frame[c].nunique() for c in s.categorical_features)


def clamp_k(k: int | str, width: int) -> int | str:
    return "all" if k == "all" or int(k) >= width else int(k)


def encode(frame: pd.DataFrame, s: DurationSettings) -> tuple[ColumnTransformer, Any]:
    """The fitted encoder and the frame's encoded rows (its fit_transform, as Pipeline.fit
    calls it): every k of the grid and the final fit start from these, not from a new
    encoding each."""
    columns = features.preprocessor(s.numeric_features, s.categorical_features)
    return columns, columns.fit_transform(feature_frame(frame, s))


def fit(frame: pd.DataFrame, s: DurationSettings, k: int | str,
        encoded: tuple[ColumnTransformer, Any] | None = None) -> tuple[Pipeline, float]:
    """The fitted pipeline and the smearing factor (1.0 without log target). `encoded`:
    encode(frame, s) when the caller has it already. The same calls as Pipeline.fit: the
    encoder's fit_transform, then the selection and regressor fitted on its output."""
    columns, x = encoded if encoded is not None else encode(frame, s)
    tail = selection(s, clamp_k(k, encoded_width(frame, s)))
    y = frame[SOURCE.label].to_numpy(dtype=float)
    target = np.log1p(y) if is_log_target(s) else y
    tail.fit(x, target)
    model = Pipeline([("features", columns), *tail.steps])
    if not is_log_target(s):
        return model, 1.0
    residuals = target - tail.predict(x)
    return model, float(np.mean(np.exp(residuals)))


def to_seconds(raw: np.ndarray, s: DurationSettings, smearing: float) -> np.ndarray:
    if not is_log_target(s):
        return raw
    return np.exp(raw) * smearing - 1.0


def predict_encoded(model: Pipeline, x: Any, s: DurationSettings,
                    smearing: float) -> np.ndarray:
    """Predictions in seconds of rows already through the model's encoder."""
    return to_seconds(model[1:].predict(x), s, smearing)


def estimator_name(s: DurationSettings) -> str:
    if s.regressor == "poisson":
        return f"PoissonRegressor(alpha={s.poisson_alpha:g}, log link)"
    return "LinearRegression"


def target_description(s: DurationSettings, smearing: float) -> str:
    if s.regressor == "poisson":
        return "duration_seconds, E[seconds] = exp(linear predictor)"
    if s.log_target:
        return f"log(1 + duration_seconds), back to seconds with smearing factor {smearing:.6f}"
    return "duration_seconds"


def baseline_seconds(frame: pd.DataFrame, training_mean: float) -> np.ndarray:
    prior = frame[BASELINE].to_numpy(dtype=float)
    return np.where(np.isnan(prior), training_mean, prior)


def regression_metrics(y: np.ndarray, predicted: np.ndarray, prefix: str = "") -> dict:
    return {f"{prefix}r2": float(r2_score(y, predicted)),
            f"{prefix}mae_seconds": float(mean_absolute_error(y, predicted)),
            f"{prefix}rmse_seconds": float(np.sqrt(mean_squared_error(y, predicted)))}


def challenger_pipeline(s: DurationSettings) -> Pipeline:
    """Poisson loss (log link): a positive, multiplicative target, predicted in seconds."""
    return features.challenger(
        HistGradientBoostingRegressor(loss="poisson", max_iter=s.challenger_max_iter,
                                      **features.EARLY_STOP),
        s.numeric_features, s.categorical_features)


def oracle_metrics(truth_frame: pd.DataFrame | None,
                   scores: dict[str, dict[str, float]]) -> list[dict]:
    """The oracle's held-out R², MAE, RMSE (prefix oracle_) and, per model (prefix "" or
    challenger_), the share of the oracle's R² it reached (the trivial prediction, the
    held-out mean, has R² 0). `truth_frame`: oracle.duration_truth's."""
    if truth_frame is None:
        log.info("duration model: the data carry no generator truth: no oracle")
        return [{"split": "test", "metric": "oracle_available", "value": 0.0}]
    known, values = oracle.coverage(truth_frame)
    best = oracle.corrected_regression(known["label"].to_numpy(dtype=float),
                                       known["oracle"].to_numpy(dtype=float),
                                       known["variance"].to_numpy(dtype=float))
    values.update(best)
    for prefix, model in scores.items():
        values[f"{prefix}oracle_gap_closed_r2"] = oracle.gap_closed(
            model[f"{prefix}r2"], 0.0, best["oracle_r2"])
    return [{"split": "test", "metric": m, "value": v} for m, v in values.items()]


def choose_k(train: pd.DataFrame, s: DurationSettings, window: data.Window) -> tuple[
        int | str, list[dict]]:
    """k from the grid with the lowest validation RMSE; validation = the last
    validation_days of the training days (a time split inside the training data)."""
    if s.k_features != "auto":
        return s.k_features, []
    dates = pd.to_datetime(train[SOURCE.date_column])
    cut = pd.Timestamp(window.train_end) - pd.Timedelta(days=s.validation_days - 1)
    early, late = train[dates < cut], train[dates >= cut]
    if early.empty or late.empty:
        raise ValueError("validation_days leaves no rows to fit or to validate on")
    width = encoded_width(early, s)
    encoded = encode(early, s)
    x_late = encoded[0].transform(feature_frame(late, s))
    rows, best = [], None
    for k in dict.fromkeys(clamp_k(k, width) for k in s.k_grid):
        model, smearing = fit(early, s, k, encoded)
        predicted = predict_encoded(model, x_late, s, smearing)
        rmse = float(np.sqrt(mean_squared_error(late[SOURCE.label], predicted)))
        rows.append({"split": "validation", "metric": f"rmse_seconds_k_{k}", "value": rmse})
        if best is None or rmse < best[1]:
            best = (k, rmse)
    log.info("duration model: k=%s chosen on %d validation sessions (RMSE %.1f s)",
             best[0], len(late), best[1])
    return best[0], rows


def run(conn, settings: TrainSettings, sink: PredictionSink,
        database: str | None = None) -> dict:
    s = settings.duration
    window = data.split_window(conn, SOURCE, settings.test_days, settings.split_date)
    train, info = data.read_training(conn, SOURCE, window, numeric_read(s),
                                     s.categorical_features, s.sample_rows,
                                     settings.chunk_rows)
    truth = oracle.prefetch(conn, oracle.duration_truth, SOURCE, window, settings.chunk_rows,
                            database=database)
    k, metrics = choose_k(train, s, window)
    started = time.perf_counter()
    encoded = encode(train, s)
    model, smearing = fit(train, s, k, encoded)
    fit_seconds = time.perf_counter() - started
    rival = None
    if s.challenger_max_iter:
        rival = challenger_pipeline(s).fit(feature_frame(train, s),
                                           train[SOURCE.label].to_numpy(dtype=float))
    y_train = train[SOURCE.label].to_numpy(dtype=float)
    training_mean = float(y_train.mean())
    selector = model.named_steps["select"]
    mask = selector.get_support()
    coefficients = np.zeros(len(mask))
    coefficients[mask] = model.named_steps["model"].coef_
    term_rows = features.terms(model.named_steps["features"], coefficients,
                               float(model.named_steps["model"].intercept_), train, mask)
    for split, frame, y in (("train", train, y_train),):
        metrics += [{"split": split, "metric": m, "value": v} for m, v in {
            "rows": float(len(y)), "mean_target_seconds": float(y.mean()),
            **regression_metrics(y, predict_encoded(model, encoded[1], s, smearing)),
            **regression_metrics(y, baseline_seconds(frame, training_mean), "baseline_"),
        }.items()]
    del train, encoded

    ys, predictions, baselines, rival_predictions, stored = [], [], [], [], []
    for chunk in data.stream_test(conn, SOURCE, window, numeric_read(s),
                                  s.categorical_features):
        y = chunk[SOURCE.label].to_numpy(dtype=float)
        x = feature_frame(chunk, s)
        p = to_seconds(model.predict(x), s, smearing)
        b = baseline_seconds(chunk, training_mean)
        ys.append(y)
        predictions.append(p)
        baselines.append(b)
        if rival is not None:
            rival_predictions.append(rival.predict(x))
        stored.append(pd.DataFrame({"session_id": chunk["session_id"],
                                    "event_date": chunk[SOURCE.date_column], "label": y,
                                    "prediction": p, "baseline_prediction": b}))
    if not ys:
        raise LookupError(f"{SOURCE.table}: no held-out rows")
    # stored once the stream has ended: its COPY holds the connection until then
    for frame in stored:
        sink(frame)
    # the metrics sum in (day, session) order, as the held-out rows came before
    order = data.row_order(stored, "event_date", "session_id")
    y_test, p_test, b_test = (np.concatenate(v)[order] for v in (ys, predictions, baselines))
    scores = {"": regression_metrics(y_test, p_test)}
    if rival is not None:
        scores["challenger_"] = regression_metrics(
            y_test, np.concatenate(rival_predictions)[order], "challenger_")
    metrics += [{"split": "test", "metric": m, "value": v} for m, v in {
        "rows": float(len(y_test)), "mean_target_seconds": float(y_test.mean()),
        **scores[""], **regression_metrics(y_test, b_test, "baseline_"),
        **scores.get("challenger_", {}),
    }.items()]
    metrics += oracle_metrics(truth(), scores)
    info.update({"test_rows": len(y_test), "fit_seconds": fit_seconds,
                 "feature_count": len(s.numeric_features) + len(s.categorical_features),
                 "selected_feature_count": int(mask.sum()),
                 "estimator": f"ColumnTransformer(impute+StandardScaler, OneHotEncoder) -> "
                              f"SelectKBest(f_regression, k={k}) -> {estimator_name(s)}",
                 "target": target_description(s, smearing),
                 "k_selected": str(k),
                 "challenger": (f"HistGradientBoostingRegressor(loss=poisson, "
                                f"{features.rounds(rival, s.challenger_max_iter)})"
                                if rival is not None else None)})
    log.info("duration model: k=%s, %d of %d encoded columns, %d held-out sessions", k,
             int(mask.sum()), len(mask), len(y_test))
    return {"window": window, "info": info, "metrics": pd.DataFrame(metrics),
            "terms": term_rows, "calibration": None, "model": model,
            "challenger": rival}
