"""Rejected source rows kept as the source wrote them, and the errors that stop a command.

Loaders map source rows to raw rows before the contract sees them; a rejected mapped row
would not show what was wrong in the file. So loaders check mapped rows here first and
quarantine the *original* record (with its row number in the file) and the reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from python_jobs import contract, db


class Unusable(Exception):
    """The input cannot be loaded at all (exit status 2): one line naming file and cause."""


class AllRejected(Exception):
    """Every row of a file was rejected (exit status 1); nothing is committed."""


def record_text(record: dict) -> str:
    clean = {str(k): (None if v is None or (not isinstance(v, (list, dict)) and pd.isna(v))
                      else v) for k, v in record.items() if not str(k).startswith("_")}
    return json.dumps(clean, ensure_ascii=False, default=str)


def write(conn: db.Connection, table_name: str, records: Sequence[dict],
          reasons: Sequence[str], row_numbers: Sequence[int], *, batch_id: str,
          source: str) -> int:
    """Quarantine original records with their reasons and 1-based row numbers in the file."""
    if not records:
        return 0
    frame = pd.DataFrame({
        "batch_id": batch_id, "table_name": table_name, "source": source,
        "row_number": [int(n) for n in row_numbers], "reason": list(reasons),
        "record": [record_text(r) for r in records],
        "rejected_at": datetime.now(UTC).replace(tzinfo=None),
    })
    return db.copy_frame(conn, f"{contract.RAW_SCHEMA}.load_rejects", frame)


def split(table_name: str, mapped: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """(mapped rows the contract accepts, reasons of the others indexed like `mapped`)."""
    _, bad = contract.validate(contract.TABLES[table_name], mapped)
    reasons = pd.Series(bad["reason"].to_numpy(), index=bad["row_index"], dtype="object")
    return mapped.drop(index=reasons.index), reasons


def summary(reasons: Counter, limit: int = 3) -> str:
    top = ", ".join(f"{n} x {why}" for why, n in reasons.most_common(limit))
    more = len(reasons) - limit
    return top + (f" (+{more} other reasons)" if more > 0 else "")


def check_some_loaded(path_name: str, loaded: int, reasons: Counter) -> None:
    """Raise AllRejected when rows came in and none was loaded."""
    total = sum(reasons.values())
    if loaded == 0 and total:
        raise AllRejected(f"{path_name}: all {total} rows rejected, nothing loaded: "
                          f"{summary(reasons)}")
