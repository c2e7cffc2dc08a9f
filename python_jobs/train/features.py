"""The shared preprocessing of both models and its export as SQL-scorable terms.

    numerics      SimpleImputer(mean) -> StandardScaler      term = coef * (coalesce(x, fill)
                                                                     - center) / scale
    categoricals  OneHotEncoder(handle_unknown="ignore")     term = coef when x = category
                                                                     (null = __missing__),
                                                                     0 for unseen categories
    intercept                                                term = coef

The linear predictor is the sum of the terms; P(skip) = 1 / (1 + exp(-z)). One row per term
goes to ml.model_coefficients, which holds everything SQL needs to reproduce predict_proba.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

from python_jobs import config

DBT_PROJECT = config.ROOT / "dbt_project.yml"


def skip_catalogue() -> dict[str, Any]:
    """Every feature the skip model may use, defined once as dbt var skip_model_features
    (dbt_project.yml): numeric, boolean and categorical columns of fct_play_skip_features and
    derived features (name -> SQL over them). The SQL scoring model reads the same var."""
    return yaml.safe_load(DBT_PROJECT.read_text())["vars"]["skip_model_features"]


SKIP = skip_catalogue()

# Derived features: SQL over a mart's columns, read by python_jobs/train/data.py in place of a
# column of that name; the SQL scoring model computes the skip ones with the same text (both
# read the var above), so Python and SQL see identical inputs. Every function used (least,
# ln, abs, coalesce) means the same on PostgreSQL and Spark; constants are written 3e0 (see
# the var). The forms come from what the generator plants (docs/ground_truth.md sections 2
# and 4; docs/models.md explains each).
DERIVED: dict[str, str] = {
    **SKIP["derived"],
    # duration: session length is multiplicative (log(mu) is linear), so history enters as logs
    "log_user_prior_mean_duration": "ln(1 + user_prior_mean_duration_seconds)",
    "log_previous_session_duration": "ln(1 + previous_session_duration_seconds)",
    # duration: the user's effect s_u, from the mean plays of earlier sessions shrunk towards
    # 15 plays by 2 pseudo-sessions, on the log scale
    "log_user_prior_track_count_shrunk":
        "ln((coalesce(user_prior_mean_track_count, 15) * user_prior_session_count + 3e1)"
        " / (user_prior_session_count + 2e0))",
    "log_user_prior_session_count": "ln(1 + user_prior_session_count)",
    "log_hours_since_previous_session": "ln(1 + hours_since_previous_session)",
    "log_previous_session_track_count": "ln(1 + previous_session_track_count)",
}

_BLOCK_VALUES = 1 << 22  # values per block of rows built at a time: 32 MB of doubles

TERM_COLUMNS = ("term_index", "term", "term_kind", "feature", "category", "coefficient",
                "raw_coefficient", "importance", "is_selected", "fill_value", "center",
                "scale")


def dense_to_csr(x: np.ndarray) -> sparse.csr_array:
    """The standardized numerics as CSR: exact zeros dropped, columns in order, int32
    indices, the very matrix the ColumnTransformer's sparse hstack builds from the dense
    block through COO (whose int64 coordinates for every value cost about 1.5 GB at a
    million training plays); CSR blocks are stacked directly. Filled a block of rows at a
    time into arrays allocated once: no index or mask array of every value beside them."""
    x = np.ascontiguousarray(x)
    rows, width = x.shape
    index = np.int32 if x.size < 2**31 else np.int64
    kept = x != 0
    indptr = np.zeros(rows + 1, dtype=index)
    np.cumsum(kept.sum(axis=1), out=indptr[1:])
    values = np.empty(int(indptr[-1]), dtype=x.dtype)
    columns = np.empty(int(indptr[-1]), dtype=index)
    for start, stop in _row_blocks(rows, width):
        mask = kept[start:stop]
        values[indptr[start]:indptr[stop]] = x[start:stop][mask]
        columns[indptr[start]:indptr[stop]] = np.broadcast_to(
            np.arange(width, dtype=index), mask.shape)[mask]
    return sparse.csr_array((values, columns, indptr), shape=x.shape)


def _row_blocks(rows: int, values_per_row: float) -> list[tuple[int, int]]:
    """[start, stop) blocks of rows holding about _BLOCK_VALUES values each."""
    step = max(1, int(_BLOCK_VALUES // max(values_per_row, 1.0)))
    return [(start, min(start + step, rows)) for start in range(0, rows, step)]


def stack_csr(blocks: list[sparse.csr_array | sparse.csr_matrix]) -> sparse.csr_array:
    """scipy's sparse.hstack(blocks).tocsr() of CSR blocks, the same matrix, built a block of
    rows at a time into arrays allocated once: scipy's holds two more copies of every
    value beside its inputs (about 1 GB at a million training plays)."""
    rows = blocks[0].shape[0]
    nnz = sum(b.nnz for b in blocks)
    width = sum(b.shape[1] for b in blocks)
    index = np.int32 if max(nnz, width - 1) <= np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(rows + 1, dtype=index)
    np.cumsum(sum(np.diff(b.indptr) for b in blocks), out=indptr[1:])
    values = np.empty(nnz, dtype=np.result_type(*(b.dtype for b in blocks)))
    columns = np.empty(nnz, dtype=index)
    for start, stop in _row_blocks(rows, nnz / max(rows, 1)):
        part = sparse.hstack([b[start:stop] for b in blocks], format="csr")
        values[indptr[start]:indptr[stop]] = part.data
        columns[indptr[start]:indptr[stop]] = part.indices
    container = sparse.csr_array if isinstance(blocks[0], sparse.sparray) else sparse.csr_matrix
    return container((values, columns, indptr), shape=(rows, width))


class LeanColumnTransformer(ColumnTransformer):
    """A ColumnTransformer whose sparse output of CSR blocks is stacked by stack_csr (the
    same matrix as scipy's hstack, at the fit's peak memory about 1 GB less)."""

    def _hstack(self, Xs, *, n_samples):
        if self.sparse_output_ and Xs and all(sparse.issparse(x) and x.format == "csr"
                                              for x in Xs):
            return stack_csr(list(Xs))
        return super()._hstack(Xs, n_samples=n_samples)


def preprocessor(numeric: tuple[str, ...], categorical: tuple[str, ...]) -> ColumnTransformer:
    numeric_steps = Pipeline([
        ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
        # in place on the imputer's output, which is always a fresh array: one copy of
        # every numeric value fewer at the fit's peak, the same arithmetic
        ("scale", StandardScaler(copy=False)),
        ("sparse", FunctionTransformer(dense_to_csr, feature_names_out="one-to-one")),
    ])
    return LeanColumnTransformer(
        [("num", numeric_steps, list(numeric)),
         ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=True),
          list(categorical))],
        remainder="drop", sparse_threshold=1.0, verbose_feature_names_out=True)


def terms(columns: ColumnTransformer, coefficients: np.ndarray, intercept: float,
          frame: pd.DataFrame, selected: np.ndarray | None = None) -> pd.DataFrame:
    """One row per encoded column (and the intercept). `coefficients` has one value per
    encoded column (0 where `selected` is False). importance = |coef| on the standardized
    scale: for numerics the coefficient itself (inputs are standardized), for one-hot columns
    |coef| times the training standard deviation of the 0/1 column."""
    numeric = list(columns.transformers_[0][2])
    categorical = list(columns.transformers_[1][2])
    imputer = columns.named_transformers_["num"].named_steps["impute"]
    scaler = columns.named_transformers_["num"].named_steps["scale"]
    encoder = columns.named_transformers_["cat"]
    if selected is None:
        selected = np.ones(len(coefficients), dtype=bool)
    rows: list[dict] = [{"term": "intercept", "term_kind": "intercept", "feature": None,
                         "category": None, "coefficient": float(intercept),
                         "raw_coefficient": float(intercept), "importance": None,
                         "is_selected": True, "fill_value": None, "center": None,
                         "scale": None}]
    i = 0
    for j, feature in enumerate(numeric):
        coef = float(coefficients[i])
        rows.append({"term": f"num__{feature}", "term_kind": "numeric", "feature": feature,
                     "category": None, "coefficient": coef,
                     "raw_coefficient": coef / float(scaler.scale_[j]),
                     "importance": abs(coef), "is_selected": bool(selected[i]),
                     "fill_value": float(imputer.statistics_[j]),
                     "center": float(scaler.mean_[j]), "scale": float(scaler.scale_[j])})
        i += 1
    for feature, categories in zip(categorical, encoder.categories_, strict=True):
        values = frame[feature].astype(str).to_numpy()
        for category in categories:
            coef = float(coefficients[i])
            share = float(np.mean(values == str(category)))
            rows.append({"term": f"cat__{feature}_{category}", "term_kind": "categorical",
                         "feature": feature, "category": str(category), "coefficient": coef,
                         "raw_coefficient": coef,
                         "importance": abs(coef) * float(np.sqrt(share * (1 - share))),
                         "is_selected": bool(selected[i]), "fill_value": None,
                         "center": None, "scale": None})
            i += 1
    if i != len(coefficients):
        raise ValueError(f"{len(coefficients)} coefficients for {i} encoded columns")
    out = pd.DataFrame(rows)
    out.insert(0, "term_index", np.arange(len(out)))
    return out.reindex(columns=list(TERM_COLUMNS))


def linear_predictor(term_rows: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """z from the exported terms alone, as the SQL scoring model computes it: the held-out
    rows are scored this way, so their metrics are those of the model as it is deployed,
    and with no encoded matrix (its sparse blocks cost more than the model: at 1M sessions
    about 12 of the 2.9M held-out plays' 60 s)."""
    kinds = term_rows["term_kind"]
    numeric = term_rows[kinds == "numeric"]
    x = frame[list(numeric["feature"])].to_numpy(dtype=float)
    x = np.where(np.isnan(x), numeric["fill_value"].to_numpy(dtype=float), x)
    x -= numeric["center"].to_numpy(dtype=float)
    x /= numeric["scale"].to_numpy(dtype=float)
    z = x @ numeric["coefficient"].to_numpy(dtype=float)
    z += float(term_rows.loc[kinds == "intercept", "coefficient"].sum())
    for feature, rows in term_rows[kinds == "categorical"].groupby("feature", sort=False):
        values = frame[feature]
        if not isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(str).astype("category")
        # each category's coefficient, 0 for one the fit never saw (as OneHotEncoder)
        weights = (pd.Series(rows["coefficient"].to_numpy(dtype=float),
                             index=rows["category"].to_numpy())
                   .reindex(values.cat.categories.astype(str), fill_value=0.0).to_numpy())
        codes = values.cat.codes.to_numpy()
        z += np.where(codes >= 0, weights[codes], 0.0)
    return z


def challenger_columns(numeric: tuple[str, ...], categorical: tuple[str, ...]) -> ColumnTransformer:
    """The challengers' inputs: numerics as they are (gradient boosting handles NaN and
    scale), categoricals as ordinal codes it splits on natively (unseen -> NaN)."""
    return ColumnTransformer(
        [("num", "passthrough", list(numeric)),
         ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                encoded_missing_value=np.nan), list(categorical))],
        remainder="drop", sparse_threshold=0.0)


# The challengers stop when their loss on a held-back tenth of the training rows (a seeded
# draw) has not improved for 10 rounds: at 1M sessions the skip challenger stopped after 120
# of 200 rounds with the same held-out AUC to 1e-4 (fit 27.5 -> 19.4 s, and fewer trees to
# score every held-out play with).
EARLY_STOP = {"early_stopping": True, "validation_fraction": 0.1, "n_iter_no_change": 10,
              "random_state": 0}


def rounds(fitted: Pipeline, max_iter: int) -> str:
    """The challenger's rounds for the run's description: those it used of the most allowed."""
    return f"max_iter={max_iter}, {fitted[-1].n_iter_} rounds (early stopping)"


def challenger(estimator, numeric: tuple[str, ...], categorical: tuple[str, ...]) -> Pipeline:
    """HistGradientBoosting* on the same features as the linear model (not SQL-scorable:
    reported beside it, never stored as terms)."""
    mask = [False] * len(numeric) + [True] * len(categorical)
    estimator.set_params(categorical_features=mask)
    return Pipeline([("features", challenger_columns(numeric, categorical)),
                     ("model", estimator)])
