"""Request bodies to events, and events to the raw contract's typed rows.

Numbers are kept as the text the client wrote (json's parse_int/parse_float=str), so every
value reaches the contract's parser (python_jobs.exact, through contract.check) exactly as a
CSV field would: the collector accepts what the file loader accepts and nothing else, with
the same reasons. JSON true/false are the text true/false; null is a missing value.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from python_jobs import contract, exact

TABLE = contract.TABLES["listening_events"]
COLUMNS = TABLE.column_names
MAX_LINE_CHARS = 2_000  # of a broken line kept in raw.load_rejects


@dataclass(frozen=True)
class Event:
    """One event as received: its fields (values as text, True/False or None) or, for what
    is not an event at all, why not and the text it came from."""

    fields: dict | None
    text: str | None = None
    problem: str | None = None

    @property
    def event_id(self) -> str | None:
        value = self.fields.get("event_id") if self.fields else None
        return value if isinstance(value, str) else None


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


# One decoder: json.loads with hooks would build a new one per call (twice the cost).
_decoder = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=_no_constants)
_loads = _decoder.decode
_scan_once = _decoder.scan_once  # the C scanner decode() calls, without its two regexes
_NESTED = frozenset((dict, list))


def _line_value(line: str):
    """_loads(line), faster for the usual line (an object, no surrounding blanks); anything
    else goes through _loads itself, so errors and their messages are decode()'s."""
    if line[:1] == "{":
        try:
            value, end = _scan_once(line, 0)
        except (StopIteration, ValueError):
            pass
        else:
            if end == len(line):
                return value
    return _loads(line)


def _event(value, text) -> Event:
    """text: the event's text, or a function giving it (only a non-object needs it)."""
    if not isinstance(value, dict):
        text = text if isinstance(text, str) else text()
        return Event(None, text[:MAX_LINE_CHARS], "not a JSON object")
    if _NESTED.isdisjoint(map(type, value.values())):  # the usual event: one C-level pass
        return Event(value)
    nested = sorted(k for k in COLUMNS if isinstance(value.get(k), (dict, list)))
    if nested:
        return Event(value, None, "; ".join(f"{k}: not a single value (an object or array)"
                                            for k in nested))
    return Event(value)


def parse_body(body: bytes) -> list[Event]:
    """A JSON array of events, or NDJSON (one event per line; one object alone is one
    event). A line of NDJSON that is not JSON is one rejected event; an array that is not
    JSON as a whole raises ValueError (there are no events to tell apart)."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if text.lstrip().startswith("["):
        values = _loads(text)
        if not isinstance(values, list):
            raise ValueError("not a JSON array")
        return [_event(v, lambda v=v: json.dumps(v)) for v in values]
    events = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = _line_value(line)
        except ValueError as exc:
            events.append(Event(None, line[:MAX_LINE_CHARS], f"not valid JSON: {exc}"))
            continue
        events.append(_event(value, line))
    return events


def _text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _column(values: list) -> pa.Array:
    """Values (text, True/False or None) as the text column a CSV would give."""
    with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(values, pa.string())
    with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):
        flags = pa.array(values)  # a column of JSON true/false (and null) only
        if pa.types.is_boolean(flags.type):
            return flags.cast(pa.string())  # "true"/"false", as _text writes them
    return pa.array([_text(v) for v in values], pa.string())


def check(fields: Sequence[dict], options: exact.Options = exact.DEFAULTS,
          ) -> tuple[pd.DataFrame, np.ndarray]:
    """The contract's typed rows of these events and each one's reasons ('' = good): the
    loader's own check, over text columns as a CSV would give them."""
    columns = {name: _column([f.get(name) for f in fields]) for name in COLUMNS}
    typed, reasons = contract.check(TABLE, columns, len(fields), options)
    return typed, np.array([r.rstrip("; ") for r in reasons], dtype=object)


def record(event: Event) -> str:
    """An event as raw.load_rejects keeps it: its fields as JSON, or {"_line": text}."""
    if event.fields is not None:
        return json.dumps({k: _text(v) if not isinstance(v, (dict, list)) else v
                           for k, v in event.fields.items()}, ensure_ascii=False)
    return json.dumps({"_line": event.text}, ensure_ascii=False)
