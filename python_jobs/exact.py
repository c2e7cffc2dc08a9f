"""Exact, vectorised parsing of one contract column from an Arrow array.

Every parser returns the typed values (numpy/pandas, missing where not loadable) and a list
of (mask, reason) for the values it refuses. Nothing goes through a guess: integers never
pass through float, a date order is chosen once per file (ISO 8601 unless the caller says
otherwise), and what cannot be read exactly is refused with the value's column and why.
Arrow's compute kernels do the work (RE2 regular expressions, casts): no Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# How R, pandas, PostgreSQL and most exports write a missing value.
DEFAULT_MISSING = ("", "NA", "NULL", "\\N")
BOOL_TRUE = ("true", "t", "1", "yes", "y")
BOOL_FALSE = ("false", "f", "0", "no", "n")
EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}
DATE_ORDERS = ("iso", "dmy", "mdy")

_INT = r"^[+-]?[0-9]+(\.0*)?$"  # "3.0" is exactly 3 (pandas writes integers with gaps so)
_DOUBLE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INT64_MAX = "9223372036854775807"
_INT32 = (-(2**31), 2**31 - 1)
_TIME = (r"(?:[T ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
         r"(?::(?P<second>[0-9]{2})(?:[.,](?P<frac>[0-9]{1,9}))?)?)?"
         r"\s*(?P<zone>Z|z|UTC|[+-][0-9]{2}(?::?[0-9]{2})?)?$")
_PATTERNS = {
    "iso": r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})" + _TIME,
    "dmy": r"^(?P<day>[0-9]{1,2})[/.-](?P<month>[0-9]{1,2})[/.-](?P<year>[0-9]{4})" + _TIME,
    "mdy": r"^(?P<month>[0-9]{1,2})[/.-](?P<day>[0-9]{1,2})[/.-](?P<year>[0-9]{4})" + _TIME,
}
_US_PER_DAY = 86_400_000_000
# PostgreSQL's timestamp holds more, but the ISO forms here have four-digit years.
_MIN_US = -62135596800 * 1_000_000  # 0001-01-01 00:00:00
_MAX_US = 253402300800 * 1_000_000 - 1  # 9999-12-31 23:59:59.999999


@dataclass(frozen=True)
class Options:
    """How a file writes what the contract's types cannot say alone; one choice per file."""

    missing: tuple[str, ...] = DEFAULT_MISSING
    date_order: str = "iso"  # iso | dmy | mdy
    timestamp_format: str | None = None  # strptime format, e.g. "%d/%m/%Y %H:%M"
    epoch_unit: str | None = None  # unit of integer timestamps: s | ms | us | ns


DEFAULTS = Options()
Reasons = list[tuple[np.ndarray, str]]


def _mask(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def is_text(array: pa.Array) -> bool:
    return pa.types.is_string(array.type) or pa.types.is_large_string(array.type)


def as_text(array: pa.Array) -> pa.Array:
    """Any array as text, for parsing or for quoting a rejected record."""
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), pa.string())
    return pc.cast(array, pa.string())


def from_pandas(series: pd.Series) -> pa.Array:
    """A pandas column as Arrow (NaN/None/NA = null); mixed Python objects as their text."""
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array(series.astype("string"), from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = pc.cast(array, array.type.value_type)
    if pa.types.is_large_string(array.type):
        array = pc.cast(array, pa.string())
    return array


def missing_mask(array: pa.Array, options: Options) -> np.ndarray:
    missing = _mask(pc.is_null(array))
    if is_text(array) and options.missing:
        missing |= _mask(pc.is_in(array, value_set=pa.array(options.missing, array.type)))
    elif pa.types.is_floating(array.type):
        missing |= _mask(pc.is_nan(array))  # a float NaN is pandas' and Parquet's missing
    return missing


def parse(kind: str, name: str, array: pa.Array, options: Options) -> tuple[object, Reasons]:
    """Typed values of one column (missing where absent or refused) and the refusals."""
    present = ~missing_mask(array, options)
    if kind == "text":
        return _text(name, array, present)
    if kind in ("bigint", "integer"):
        return _integer(kind, name, array, present)
    if kind == "double":
        return _double(name, array, present)
    if kind == "boolean":
        return _boolean(name, array, present)
    if kind in ("timestamp", "date"):
        return _timestamp(kind, name, array, present, options)
    raise ValueError(f"unknown contract type {kind}")


def _text(name: str, array: pa.Array, present: np.ndarray) -> tuple[object, Reasons]:
    text = as_text(array)
    # Kept exactly as written (no trimming: " a" and "a" are different keys).
    nul = present & _mask(pc.match_substring(text, "\x00"))
    values = pd.Series(pd.array(text.to_pandas(), dtype="string")).where(present & ~nul)
    return values, [(nul, f"{name}: contains a NUL byte")]


def _integer(kind: str, name: str, array: pa.Array, present: np.ndarray,
             ) -> tuple[object, Reasons]:
    values = np.zeros(len(array), dtype=np.int64)
    ok = present.copy()
    reasons: Reasons = []
    if pa.types.is_integer(array.type):
        if pa.types.is_unsigned_integer(array.type):
            big = present & _mask(pc.greater(array, pa.scalar(2**63 - 1, array.type)))
            reasons.append((big, f"{name}: out of range for bigint"))
            ok &= ~big
            array = pc.if_else(pa.array(big), pa.scalar(0, array.type), array)
        values = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False)
    elif pa.types.is_floating(array.type):
        raw = pc.fill_null(array, 0.0).to_numpy(zero_copy_only=False).astype(np.float64)
        finite = np.isfinite(raw)
        whole = finite & (np.floor(np.where(finite, raw, 0)) == np.where(finite, raw, 0))
        fits = whole & (np.abs(np.where(whole, raw, 0)) < 2.0**63)
        bad = present & ~fits
        reasons.append((bad, f"{name}: not a whole number within bigint range"))
        ok &= ~bad
        values = np.where(ok, raw, 0).astype(np.int64)  # whole floats convert exactly
    else:
        text = pc.utf8_trim_whitespace(as_text(array))
        shaped = present & _mask(pc.match_substring_regex(text, _INT))
        reasons.append((present & ~shaped, f"{name}: not a valid {kind}"))
        ok &= shaped
        core = pc.replace_substring_regex(text, r"\.0*$", "")
        negative = _mask(pc.starts_with(core, "-"))
        digits = pc.replace_substring_regex(core, r"^[+-]?0*", "")
        length = pc.fill_null(pc.utf8_length(digits), 0).to_numpy(zero_copy_only=False)
        at_max = _mask(pc.less_equal(digits, _INT64_MAX))
        at_min = _mask(pc.equal(digits, "9223372036854775808")) & negative
        fits = (length < 19) | ((length == 19) & (at_max | at_min))
        big = ok & ~fits
        reasons.append((big, f"{name}: out of range for bigint"))
        ok &= fits
        signed = pc.binary_join_element_wise(
            pa.array(np.where(negative, "-", "")), digits, "")
        signed = pc.if_else(pa.array(ok & (length > 0)), signed, pa.scalar("0"))
        values = pc.cast(signed, pa.int64()).to_numpy(zero_copy_only=False)
    if kind == "integer":
        small = ok & ((values < _INT32[0]) | (values > _INT32[1]))
        reasons.append((small, f"{name}: out of range for integer"))
        ok &= ~small
    dtype = "Int64" if kind == "bigint" else "Int32"
    typed = pd.arrays.IntegerArray(values.astype(dtype.lower()), ~ok)
    return pd.Series(typed), reasons


def _double(name: str, array: pa.Array, present: np.ndarray) -> tuple[object, Reasons]:
    reasons: Reasons = []
    ok = present.copy()
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        if pa.types.is_integer(array.type):
            ints = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False)
            inexact = present & (np.abs(ints) > 2**53)
            reasons.append((inexact, f"{name}: integer too large to be exact as a double"))
            ok &= ~inexact
        raw = pc.fill_null(pc.cast(array, pa.float64()), 0.0).to_numpy(zero_copy_only=False)
    else:
        text = pc.utf8_trim_whitespace(as_text(array))
        shaped = present & _mask(pc.match_substring_regex(text, _DOUBLE))
        reasons.append((present & ~shaped, f"{name}: not a valid double"))
        ok &= shaped
        raw = pc.cast(pc.if_else(pa.array(ok), text, pa.scalar("0")),
                      pa.float64()).to_numpy(zero_copy_only=False)
    finite = np.isfinite(raw)
    reasons.append((ok & ~finite, f"{name}: not a finite number (out of range for double)"))
    ok &= finite
    return pd.Series(pd.arrays.FloatingArray(np.where(ok, raw, 0.0), ~ok)), reasons


def _boolean(name: str, array: pa.Array, present: np.ndarray) -> tuple[object, Reasons]:
    if pa.types.is_boolean(array.type):
        raw = pc.fill_null(array, False).to_numpy(zero_copy_only=False)
        return pd.Series(pd.arrays.BooleanArray(raw.astype(bool), ~present)), []
    text = pc.utf8_lower(pc.utf8_trim_whitespace(as_text(array)))
    true = _mask(pc.is_in(text, value_set=pa.array(BOOL_TRUE)))
    false = _mask(pc.is_in(text, value_set=pa.array(BOOL_FALSE)))
    bad = present & ~true & ~false
    ok = present & ~bad
    return (pd.Series(pd.arrays.BooleanArray(true, ~ok)),
            [(bad, f"{name}: not a valid boolean (true/false, t/f, 1/0, yes/no)")])


def _civil_days(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _ints(text: pa.Array, default: int = 0) -> np.ndarray:
    """Digit strings (empty or null = default) as int64."""
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return pc.fill_null(pc.cast(text, pa.int64()), default).to_numpy(zero_copy_only=False)


def _text_timestamps(name: str, text: pa.Array, ok: np.ndarray, options: Options,
                     ) -> tuple[np.ndarray, np.ndarray, Reasons]:
    """Epoch microseconds (UTC) of text timestamps; (micros, ok, reasons)."""
    text = pc.utf8_trim_whitespace(text)
    if options.timestamp_format:
        parsed = pc.strptime(text, format=options.timestamp_format, unit="us",
                             error_is_null=True)
        good = ok & _mask(pc.is_valid(parsed))
        micros = pc.fill_null(pc.cast(parsed, pa.int64()), 0).to_numpy(zero_copy_only=False)
        return micros, good, [(ok & ~good, f"{name}: not a valid timestamp (format "
                                           f"{options.timestamp_format})")]
    shaped = ok & _mask(pc.match_substring_regex(text, _PATTERNS[options.date_order]))
    hint = ("ISO 8601 YYYY-MM-DD[ HH:MM[:SS[.f]]][Z|+HH:MM] expected"
            if options.date_order == "iso" else f"{options.date_order} date expected")
    reasons: Reasons = [(ok & ~shaped, f"{name}: not a valid timestamp ({hint})")]
    placeholder = "1970-01-01" if options.date_order == "iso" else "01/01/1970"
    parts = pc.extract_regex(pc.if_else(pa.array(shaped), text, pa.scalar(placeholder)),
                             _PATTERNS[options.date_order])

    def field(name: str) -> pa.Array:
        return pc.struct_field(parts, name)

    year, month, day = (_ints(field(f), 1) for f in ("year", "month", "day"))
    hour, minute, second = (_ints(field(f)) for f in ("hour", "minute", "second"))
    nanos = _ints(pc.utf8_rpad(field("frac"), 9, "0"))
    offset = pc.replace_substring_regex(field("zone"), r"^(Z|z|UTC)$", "+00:00")
    sign = np.where(_mask(pc.starts_with(offset, "-")), -1, 1)
    digits = pc.replace_substring(pc.utf8_slice_codeunits(offset, 1), ":", "")
    zone_h = _ints(pc.utf8_slice_codeunits(digits, 0, 2))
    zone_m = _ints(pc.utf8_slice_codeunits(digits, 2, 4))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    last = month_days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real = ((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= last)
            & (hour <= 23) & (minute <= 59) & (second <= 59) & (zone_h <= 23) & (zone_m <= 59))
    reasons.append((shaped & ~real, f"{name}: no such date or time"))
    good = shaped & real
    # Digits past the microsecond (PostgreSQL's precision) are rounded half up, as it does.
    micros = (_civil_days(year, month, day) * _US_PER_DAY
              + ((hour * 60 + minute) * 60 + second) * 1_000_000 + (nanos + 500) // 1000
              - sign * (zone_h * 60 + zone_m) * 60_000_000)
    return np.where(good, micros, 0), good, reasons


def _timestamp(kind: str, name: str, array: pa.Array, present: np.ndarray,
               options: Options) -> tuple[object, Reasons]:
    ok = present.copy()
    reasons: Reasons = []
    if pa.types.is_timestamp(array.type):
        # Aware timestamps are instants (stored as UTC); naive ones are taken as UTC.
        raw = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False)
        unit = array.type.unit
        micros = (raw + 500) // 1000 if unit == "ns" else raw * {"s": 1_000_000, "ms": 1_000,
                                                                 "us": 1}[unit]
    elif pa.types.is_date(array.type):
        days = pc.fill_null(pc.cast(pc.cast(array, pa.date32()), pa.int32()), 0)
        micros = days.to_numpy(zero_copy_only=False).astype(np.int64) * _US_PER_DAY
    elif pa.types.is_integer(array.type):
        raw = pc.fill_null(pc.cast(array, pa.int64()), 0).to_numpy(zero_copy_only=False)
        if options.epoch_unit is None:
            reasons.append((present, f"{name}: an integer timestamp needs a unit "
                                     "(--epoch-unit s|ms|us|ns)"))
            ok[:] = False
            micros = raw
        elif options.epoch_unit == "ns":
            micros = (raw + 500) // 1000
        else:
            scale = EPOCH_UNITS[options.epoch_unit]
            limit = np.iinfo(np.int64).max // scale
            big = present & (np.abs(raw) > limit)
            reasons.append((big, f"{name}: epoch value out of range"))
            ok &= ~big
            micros = np.where(big, 0, raw) * scale
    else:
        micros, ok, more = _text_timestamps(name, as_text(array), ok, options)
        reasons += more
    outside = ok & ((micros < _MIN_US) | (micros > _MAX_US))
    reasons.append((outside, f"{name}: outside the years 0001-9999 (UTC)"))
    ok &= ~outside
    if kind == "date":
        timed = ok & (micros % _US_PER_DAY != 0)
        reasons.append((timed, f"{name}: a date with a time of day"))
        ok &= ~timed
    values = np.where(ok, micros, 0).astype("datetime64[us]")
    values[~ok] = np.datetime64("NaT")
    return pd.Series(values), reasons
