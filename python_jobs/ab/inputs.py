"""Per-unit tables from outside the mart: a CSV or Parquet file, or any warehouse table/view.

One row per randomised unit. Every column is read as text first and parsed by what the
metrics need: proportions take booleans in the usual spellings (TRUE/FALSE, true/false, t/f,
yes/no, 1/0) or 0/1 numbers; means, ratio parts and covariates take numbers. An empty field
is a missing value (that unit leaves the metric that needs it, and the count is logged);
anything else that does not parse stops the run with a one-line error naming the column, the
row and the value. CSV: UTF-8 with or without BOM, LF or CRLF line ends, final newline
optional.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from python_jobs import db
from python_jobs.ab.metrics import IDENTIFIER, Plan

TRUE = {"true", "t", "yes", "y", "1", "1.0"}
FALSE = {"false", "f", "no", "n", "0", "0.0"}
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


class InputError(ValueError):
    """Bad input: the message is one line for the user."""


def column_kinds(plan: Plan) -> dict[str, str]:
    """Column -> 'boolean' (proportion values) or 'number' (everything else)."""
    kinds: dict[str, str] = {}
    for metric in plan.metrics:
        for i, expression in enumerate(metric.expressions):
            kind = "boolean" if metric.kind == "proportion" and i == 0 else "number"
            if kinds.get(expression) == "number":
                continue
            kinds[expression] = kind
    return kinds


def _parse(raw: pd.Series, column: str, kind: str, line_offset: int) -> np.ndarray:
    text = raw.astype("string").str.strip()
    missing = text.isna() | (text == "")
    out = np.full(len(text), np.nan)
    present = ~missing.to_numpy()
    values = text[present].str.lower()
    if kind == "boolean":
        parsed = values.map(lambda v: 1.0 if v in TRUE else 0.0 if v in FALSE else np.nan)
    else:
        parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() | ~np.isfinite(parsed.astype(float))
    if bad.any():
        position = int(np.flatnonzero(present)[np.flatnonzero(bad.to_numpy())[0]])
        value = text.iloc[position]
        expected = ("a boolean (true/false, t/f, yes/no, 1/0)" if kind == "boolean"
                    else "a number")
        raise InputError(f"column {column!r}, row {position + line_offset}: {value!r} is not "
                         f"{expected}")
    out[present] = parsed.to_numpy(dtype=float)
    return out


def read_file(path: str | Path, plan: Plan, unit_column: str, variant_column: str
              ) -> pd.DataFrame:
    """The units of a CSV or Parquet file: unit_id, variant and every column the plan needs
    (floats, NaN where empty)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pq.read_table(path).to_pandas()
            frame = frame.astype({c: "string" for c in frame.columns})
            line_offset = 0  # rows of the file, from 0
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            line_offset = 2  # line numbers of the file: the header is line 1
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: cannot read ({str(error).splitlines()[0]})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return _units(frame, plan, unit_column, variant_column, line_offset, str(path))


def _units(frame: pd.DataFrame, plan: Plan, unit_column: str, variant_column: str,
           line_offset: int, where: str) -> pd.DataFrame:
    kinds = column_kinds(plan)
    needed = [unit_column, variant_column, *kinds]
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise InputError(f"{where}: no column(s) {', '.join(missing)} (columns: "
                         f"{', '.join(map(str, frame.columns))})")
    variant = frame[variant_column].astype("string").str.strip()
    empty = variant.isna() | (variant == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0]) + line_offset
        raise InputError(f"column {variant_column!r}, row {row}: empty variant")
    units = pd.DataFrame({"unit_id": frame[unit_column].astype("string").str.strip(),
                          "variant": variant.astype(str)})
    duplicated = units["unit_id"].duplicated()
    if duplicated.any():
        first = units.loc[duplicated, "unit_id"].iloc[0]
        raise InputError(f"column {unit_column!r}: unit {first!r} appears more than once "
                         f"({int(duplicated.sum())} repeated rows); give one row per unit")
    for column, kind in kinds.items():
        units[column] = _parse(frame[column], column, kind, line_offset)
    return units


def check_table_name(name: str) -> str:
    if not TABLE_NAME.match(name):
        raise InputError(f"--from-table {name!r}: give schema.name (letters, digits, _)")
    return name


def expression_aliases(plan: Plan) -> dict[str, str]:
    """SQL expressions (anything that is not a plain column name) -> a column alias."""
    expressions = [e for e in column_kinds(plan) if not IDENTIFIER.match(e)]
    return {e: f"_expr_{i}" for i, e in enumerate(expressions)}


def read_table(conn: db.Warehouse, table: str, plan: Plan, unit_column: str,
               variant_column: str) -> pd.DataFrame:
    """The units of a warehouse table or view (columns or SQL expressions over it)."""
    check_table_name(table)
    for column in (unit_column, variant_column):
        if not IDENTIFIER.match(column):
            raise InputError(f"{column!r}: unit and variant columns must be plain names")
    aliases = expression_aliases(plan)
    extra = "".join(f", ({e}) as {a}" for e, a in aliases.items())
    try:
        frame = db.read_sql(conn, f"select *{extra} from {table}")
    except Exception as error:  # the engine's own error (missing table, bad expression)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"--from-table {table}: {first}") from None
    if frame.empty:
        raise InputError(f"{table}: no rows")
    frame = frame.rename(columns={a: e for e, a in aliases.items()})
    return _units(frame.astype(object).where(frame.notna(), None).astype("string"), plan,
                  unit_column, variant_column, 1, table)


def weights(text: str | None, variants: list[str]) -> pd.DataFrame:
    """Planned allocation: --weights a=0.5,b=0.5, or equal weights over the observed arms."""
    if not text:
        return pd.DataFrame({"variant": variants, "allocation_weight": 1.0 / len(variants)})
    pairs: Mapping[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise InputError(f"--weights {text!r}: use NAME=WEIGHT,NAME=WEIGHT")
        pairs[name.strip()] = float(value)
    return pd.DataFrame({"variant": list(pairs), "allocation_weight": list(pairs.values())})
