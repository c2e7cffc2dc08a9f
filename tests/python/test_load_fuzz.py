"""Malformed and adversarial inputs to the loader, generated here, each one checked for:
no traceback, the documented exit status, every input row loaded or rejected (never lost),
loaded values exactly the input's meaning, and no other batch's rows touched.

The loader's main() runs in-process (fast); test_load_concurrency.py runs real processes.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from python_jobs import db, load, warehouse

EVENTS = ("event_id", "user_id", "track_id", "started_at", "ms_played")
GOOD = {"user_id": "1", "track_id": "t1", "started_at": "2026-01-01 10:00:00",
        "ms_played": "1000"}
TRACKS = ("track_id", "track_name", "artist_id", "duration_ms")


def _csv_field(value: str) -> str:
    if any(ch in value for ch in ',"\n\r') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


def events_csv(column: str, values: list[str], good_rows: int = 2,
               good: dict[str, str] | None = None, tag: str = "") -> bytes:
    """Two good rows (a1, a2) and one row per value with `column` set to it (c1, c2, ...);
    `tag` makes the content unique (the same content under two names is loaded once)."""
    lines = [",".join(EVENTS)]
    rows = [dict(GOOD, event_id=f"a{i + 1}{tag}", **(good or {})) for i in range(good_rows)]
    rows += [dict(GOOD, event_id=f"c{i + 1}", **{column: v}) for i, v in enumerate(values)]
    lines += [",".join(_csv_field(r[c]) for c in EVENTS) for r in rows]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Case:
    id: str
    content: bytes | Callable[[Path], Path]  # file bytes, or a writer returning the path
    status: int = 0
    rows: int | None = None  # input rows (loaded + rejected must equal it)
    table: str = "listening_events"
    args: list[str] = field(default_factory=list)
    suffix: str = ".csv"
    # (sql expression, expected values of the loaded rows ordered by key), compared as text
    expect: tuple[str, list] | None = None
    rejects: int | None = None
    reason: str | None = None  # a text every reject's reason holds
    message: str | None = None  # a text the stderr line holds
    row_numbers: list[int] | None = None  # of the rejects, as numbered in the file


def value_cases(column: str, cases: list[tuple[str, str | None]], *, prefix: str,
                args: list[str] | None = None, sql: str | None = None,
                good: tuple[str, str] | None = None) -> list[Case]:
    """One case per value: loaded as the expected text, or rejected (None)."""
    out = []
    for i, (value, expected) in enumerate(cases):
        expr = sql or f"{column}::text"
        good_text, good_value = good or (GOOD[column], GOOD[column])
        expect_list = [good_value, good_value] + ([expected] if expected is not None else [])
        content = events_csv(column, [value], good={column: good_text}, tag=f"-{prefix}{i}")
        out.append(Case(f"{prefix}{i}:{value[:30]!r}", content, rows=3,
                        args=list(args or []), expect=(expr, expect_list),
                        rejects=0 if expected is not None else 1,
                        reason=None if expected is not None else column))
    return out


BIGINTS = [
    ("9223372036854775808", None), ("9223372036854775807", "9223372036854775807"),
    ("-9223372036854775808", "-9223372036854775808"), ("-9223372036854775809", None),
    ("1e400", None), ("inf", None), ("-inf", None), ("NaN", None),
    ("9007199254740993", "9007199254740993"), ("-0", "0"), ("+7", "7"), ("007", "7"),
    ("3.0", "3"), ("3.5", None), ("1_000", None), ("0x10", None), (" 42 ", "42"),
    ("١٢", None), ("12abc", None), ("99999999999999999999999", None),
]
INTEGERS = [("2147483648", None), ("2147483647", "2147483647"), ("-2147483648", "-2147483648"),
            ("1.000", "1"), ("1e3", None)]
TIMESTAMPS = [
    ("2026-01-01T10:00:00Z", "2026-01-01 10:00:00"),
    ("2026-01-01T10:00:00+01:00", "2026-01-01 09:00:00"),
    ("2026-01-01T10:00:00-05:30", "2026-01-01 15:30:00"),
    ("2026-01-01T10:00:00+0100", "2026-01-01 09:00:00"),
    ("2026-01-01 10:00", "2026-01-01 10:00:00"), ("2026-01-01", "2026-01-01 00:00:00"),
    ("2026-06-01 12:00:00 UTC", "2026-06-01 12:00:00"),
    ("today", None), ("now", None), ("yesterday", None), ("T10:00", None), ("1 2 3", None),
    ("31/01/2026", None), ("01/02/2026", None), ("1700000000", None), ("2026-1-1", None),
    ("2026-01-01 10:00:00.123456789", "2026-01-01 10:00:00.123457"),
    ("2026-01-01 10:00:00.9999999", "2026-01-01 10:00:01"),
    ("2026-01-01 10:00:00.1234565", "2026-01-01 10:00:00.123457"),
    ("0001-01-01 00:00:00", "0001-01-01 00:00:00"),
    ("9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999"),
    ("0000-01-01", None), ("10000-01-01", None), ("2026-02-30", None), ("2024-02-29",
                                                                        "2024-02-29 00:00:00"),
    ("2023-02-29", None), ("2026-13-01", None), ("2026-01-01 24:00", None),
    ("2026-01-01 10:60", None), ("2026-01-01T10:00:00+25:00", None),
    ("0001-01-01T00:30:00+01:00", None), ("9999-12-31T23:00:00-05:00", None),
    ("1677-09-21 00:12:43", "1677-09-21 00:12:43"), ("2262-04-12 00:00:00",
                                                      "2262-04-12 00:00:00"),
]
DAYFIRST = [("31/01/2026", "2026-01-31 00:00:00"), ("01/02/2026 10:30", "2026-02-01 10:30:00"),
            ("2026-01-31", None)]
MONTHFIRST = [("01/02/2026", "2026-01-02 00:00:00"), ("31/01/2026", None)]


def _parquet(table: pa.Table) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        pq.write_table(table, path)
        return path
    return write


def _events_table(**columns) -> pa.Table:
    n = len(next(iter(columns.values())))
    base = {"event_id": pa.array([f"p{i}" for i in range(n)]),
            "user_id": pa.array([1] * n, pa.int64()), "track_id": pa.array(["t1"] * n),
            "started_at": pa.array([0] * n, pa.timestamp("us")),
            "ms_played": pa.array([1000] * n, pa.int32())}
    base.update(columns)
    return pa.table(base)


def _truncated_parquet(path: Path) -> Path:
    _parquet(_events_table(user_id=pa.array(range(1000), pa.int64())))(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


def _gz(content: bytes, truncate: bool = False) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        data = gzip.compress(content)
        path.write_bytes(data[: len(data) - 12] if truncate else data)
        return path
    return write


def _tracks(rows: list[str]) -> bytes:
    return (",".join(TRACKS) + "\n" + "".join(r + "\n" for r in rows)).encode()


BIG = "x" * (10 << 20)


def cases() -> list[Case]:
    out: list[Case] = []
    out += value_cases("user_id", BIGINTS, prefix="bigint")
    out += value_cases("ms_played", INTEGERS, prefix="integer")
    out += value_cases("started_at", TIMESTAMPS, prefix="ts")
    day = "2026-01-01 10:00:00"
    out += value_cases("started_at", DAYFIRST, prefix="dayfirst", args=["--dayfirst"],
                       good=("01/01/2026 10:00:00", day))
    out += value_cases("started_at", MONTHFIRST, prefix="monthfirst", args=["--monthfirst"],
                       good=("01/01/2026 10:00:00", day))
    out += value_cases("started_at", [("31.01.2026 10:00", "2026-01-31 10:00:00"),
                                      ("2026-01-31", None)], prefix="format",
                       args=["--timestamp-format", "%d.%m.%Y %H:%M"],
                       good=("01.01.2026 10:00", day))
    out += [
        # missing-value markers and text kept exactly
        Case("NA-required", events_csv("track_id", ["NA", "NULL", "\\N", ""], good_rows=5),
             rows=9, rejects=4, reason="track_id: required value missing",
             row_numbers=[6, 7, 8, 9]),
        Case("NA-as-text", events_csv("track_id", ["NA"]), rows=3, args=["--missing", ""],
             expect=("track_id", ["t1", "t1", "NA"])),
        Case("spaces-kept", events_csv("track_id", [" t1", "t1 ", "  "]), rows=5,
             expect=("track_id", ["t1", "t1", " t1", "t1 ", "  "])),
        Case("quotes-newlines", events_csv("track_id", ['a "quoted", name', "line\nbreak",
                                                         "cr\r\nlf"]), rows=5,
             expect=("track_id", ["t1", "t1", 'a "quoted", name', "line\nbreak",
                                  "cr\r\nlf"])),
        Case("unicode", events_csv("track_id", ["café 🎵", "日本語", "\u200b"]), rows=5,
             expect=("track_id", ["t1", "t1", "café 🎵", "日本語", "\u200b"])),
        Case("injection-text", events_csv("track_id", ["'); drop table raw.users; --"]),
             rows=3, expect=("track_id", ["t1", "t1", "'); drop table raw.users; --"])),
        Case("10MB-field", events_csv("track_id", [BIG]), rows=3,
             expect=("length(track_id)::text", ["2", "2", str(len(BIG))])),
        Case("NUL-byte", events_csv("track_id", ["a\x00b"], good_rows=3), rows=4, rejects=1,
             reason="NUL"),
        # structure of the file
        Case("empty-file", b"", status=2, message="empty file"),
        Case("header-only", ",".join(EVENTS).encode() + b"\n", rows=0),
        Case("header-only-no-newline", ",".join(EVENTS).encode(), rows=0),
        Case("missing-required-column", b"event_id,user_id\ne1,1\n", status=2,
             message="no column"),
        Case("header-with-spaces", b"event_id, user_id,track_id,started_at,ms_played\n"
             b"e1,1,t1,2026-01-01,1\n", status=2, message="user_id"),
        Case("duplicate-header", b"event_id,user_id,user_id,track_id,started_at,ms_played\n"
             b"e1,1,2,t1,2026-01-01,1\n", status=2, message="twice"),
        Case("json-as-csv", json.dumps([{"event_id": "e1"}]).encode(), status=2,
             message="no column"),
        Case("extra-field", events_csv("ms_played", ["1000,"], good_rows=3).replace(
            b'"1000,"', b"1000,"), rows=4, rejects=1, reason="wrong number of fields",
             row_numbers=[4],
             expect=("event_id", ["a1", "a2", "a3"])),
        Case("missing-field", events_csv("ms_played", [], good_rows=3) + b"c9,1,t1\n",
             rows=4, rejects=1, reason="wrong number of fields"),
        Case("extra-field-multiline", events_csv("track_id", ["a\nb"], good_rows=3)
             + b'x1,1,"q\nq",2026-01-01,1,extra\n', rows=5, rejects=1, row_numbers=[5],
             reason="wrong number of fields", expect=("track_id", ["t1", "t1", "t1", "a\nb"])),
        Case("bom", b"\xef\xbb\xbf" + events_csv("user_id", ["5"]), rows=3,
             expect=("user_id::text", ["1", "1", "5"])),
        Case("not-utf8", events_csv("track_id", ["x"]).replace(b"c1,1,x", b"c1,1,caf\xe9"),
             status=2, message="encoding"),
        Case("latin1-with-option", events_csv("track_id", ["x"]).replace(b"c1,1,x",
                                                                         b"c1,1,caf\xe9"),
             rows=3, args=["--encoding", "latin-1"], expect=("track_id", ["t1", "t1", "café"])),
        Case("crlf", events_csv("user_id", ["7"]).replace(b"\n", b"\r\n"), rows=3,
             expect=("user_id::text", ["1", "1", "7"])),
        Case("blank-lines", events_csv("user_id", ["7"]).replace(b"\n", b"\n\n"), rows=3,
             expect=("user_id::text", ["1", "1", "7"])),
        Case("columns-reordered", b"ms_played,started_at,track_id,user_id,event_id\n"
             b"5,2026-01-02T00:00:00Z,t9,9,r1\n", rows=1,
             expect=("ms_played || '|' || started_at || '|' || track_id || '|' || user_id",
                     ["5|2026-01-02 00:00:00|t9|9"])),
        Case("extra-columns-ignored", b"event_id,user_id,track_id,started_at,ms_played,color\n"
             b"x1,1,t1,2026-01-01,5,red\n", rows=1, expect=("ms_played::text", ["5"])),
        Case("only-quotes", b'"event_id","user_id","track_id","started_at","ms_played"\n'
             b'"q1","1","t1","2026-01-01","5"\n', rows=1, expect=("user_id::text", ["1"])),
        Case("unterminated-quote", events_csv("user_id", ["7"]) + b'z1,"1,t1\n', rows=4,
             rejects=1, reason="wrong number of fields", row_numbers=[4]),
        Case("gz", _gz(events_csv("user_id", ["8"])), suffix=".csv.gz", rows=3,
             expect=("user_id::text", ["1", "1", "8"])),
        Case("gz-truncated", _gz(events_csv("user_id", ["8"]) * 50, truncate=True),
             suffix=".csv.gz", status=2),
        Case("directory", _directory, suffix=".csv", status=2, message="directory"),
        Case("txt-suffix", b"whatever", suffix=".txt", status=2, message="unsupported"),
        Case("garbage-parquet", b"PAR1 this is not parquet", suffix=".parquet", status=2),
        Case("truncated-parquet", _truncated_parquet, suffix=".parquet", status=2),
        # too many rejects: refused, nothing committed
        Case("reject-rate", events_csv("user_id", ["x", "y", "z"], good_rows=1), status=1,
             message="max-reject-rate"),
        Case("reject-rate-allowed", events_csv("user_id", ["x", "y", "z"], good_rows=1),
             rows=4, rejects=3, args=["--max-reject-rate", "1"]),
        Case("reject-rate-zero", events_csv("user_id", ["x"], good_rows=5), status=1,
             args=["--max-reject-rate", "0"]),
        # booleans and doubles (audio_features has bounded doubles)
        Case("booleans", (",".join(EVENTS) + ",is_shuffle\n" + "".join(
            f"b{i},1,t1,2026-01-01,1,{v}\n" for i, v in enumerate(
                ["TRUE", "False", "1", "0", "yes", "n", "maybe", "", "2"]))).encode(),
             rows=9, rejects=2, reason="is_shuffle", expect=(
                "coalesce(is_shuffle::text, 'null')",
                ["true", "false", "true", "false", "true", "false", "null"])),
        Case("doubles", ("track_id,danceability\n" + "".join(
            f"a{i},{v}\n" for i, v in enumerate(
                ["0.5", "1e-3", "-0", ".5", "1", "NaN", "inf", "1e400", "1.5", '"0,5"']))
        ).encode(), table="audio_features", rows=10, rejects=5, reason="danceability",
             expect=("danceability::text", ["0.5", "0.001", "-0", "0.5", "1"])),
        # duplicate keys inside a batch: the first wins
        Case("duplicate-track", _tracks(["t1,first,a1,1000", "t2,x,a1,1000",
                                         "t1,second,a1,2000"]), table="tracks", rows=3,
             rejects=1, reason="duplicate key in batch",
             expect=("track_name", ["first", "x"])),
        Case("duplicate-track-after-bad", _tracks(["t1,first,a1,zero", "t1,second,a1,5"]),
             table="tracks", rows=2, rejects=1, args=["--max-reject-rate", "1"],
             expect=("track_name", ["second"])),
        Case("spaced-keys-distinct", _tracks(["t1,a,a1,1", " t1,b,a1,1", "t1 ,c,a1,1"]),
             table="tracks", rows=3, rejects=0, expect=("track_name", ["b", "a", "c"])),
        # Parquet: read by Arrow type
        Case("parquet-epoch-no-unit", _parquet(_events_table(
            started_at=pa.array([1_767_225_600_000_000] * 3, pa.int64()))),
             suffix=".parquet", status=1, message="--epoch-unit"),
        Case("parquet-epoch-us", _parquet(_events_table(
            started_at=pa.array([1_767_225_600_000_000] * 3, pa.int64()))),
             suffix=".parquet", rows=3, args=["--epoch-unit", "us"],
             expect=("started_at::text", ["2026-01-01 00:00:00"] * 3)),
        Case("parquet-epoch-s", _parquet(_events_table(
            started_at=pa.array([1_767_225_600] * 2, pa.int64()))),
             suffix=".parquet", rows=2, args=["--epoch-unit", "s"],
             expect=("started_at::text", ["2026-01-01 00:00:00"] * 2)),
        Case("parquet-tz", _parquet(_events_table(started_at=pa.array(
            [1_767_225_600_000_000_123], pa.timestamp("ns", tz="Europe/Paris")))),
             suffix=".parquet", rows=1, expect=("started_at::text", ["2026-01-01 00:00:00"])),
        Case("parquet-year-1", _parquet(_events_table(started_at=pa.array(
            [-62135596800_000_000, 253402300799_999_999], pa.timestamp("us")))),
             suffix=".parquet", rows=2, expect=("started_at::text", [
                 "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999"])),
        Case("parquet-int-gaps", _parquet(_events_table(user_id=pa.array(
            [9007199254740993, None, -1], pa.int64()))), suffix=".parquet", rows=3,
             rejects=1, reason="user_id: required", args=["--max-reject-rate", "1"],
             expect=("user_id::text", ["9007199254740993", "-1"])),
        Case("parquet-uint64", _parquet(_events_table(user_id=pa.array(
            [2**63, 5, 6], pa.uint64()))), suffix=".parquet", rows=3, rejects=1,
             reason="out of range", expect=("user_id::text", ["5", "6"])),
        Case("parquet-float-ids", _parquet(_events_table(user_id=pa.array(
            [3.0, 3.5, 4.0], pa.float64()))), suffix=".parquet", rows=3, rejects=1,
             expect=("user_id::text", ["3", "4"])),
        Case("parquet-date", _parquet(_events_table(started_at=pa.array(
            [20454], pa.date32()))), suffix=".parquet", rows=1,
             expect=("started_at::text", ["2026-01-01 00:00:00"])),
        Case("parquet-strings", _parquet(_events_table(started_at=pa.array(
            ["2026-01-01T10:00:00+02:00", "NA"]))), suffix=".parquet", rows=2, rejects=1,
             args=["--max-reject-rate", "1"], expect=("started_at::text",
                                                      ["2026-01-01 08:00:00"])),
        Case("parquet-dictionary", _parquet(_events_table(track_id=pa.array(
            ["t7", "t7", "t8"]).dictionary_encode())), suffix=".parquet", rows=3,
             expect=("track_id", ["t7", "t7", "t8"])),
        Case("parquet-list-column", _parquet(_events_table(track_id=pa.array(
            [["t1"], ["t2"]]))), suffix=".parquet", status=2, message="list"),
        Case("parquet-empty", _parquet(_events_table(event_id=pa.array([], pa.string()))),
             suffix=".parquet", rows=0),
        # arguments
        Case("table-injection", events_csv("user_id", []), status=2,
             args=["--table", "users; drop table raw.users"]),
        Case("batch-name-injection", events_csv("user_id", ["3"]), rows=3,
             args=["--batch-name", "x'); drop table raw.users; --"]),
        Case("batch-name-empty", events_csv("user_id", []), status=2, args=["--batch-name", ""]),
        Case("batch-name-control", events_csv("user_id", []), status=2,
             args=["--batch-name", "a\nb"]),
        Case("rate-out-of-range", events_csv("user_id", []), status=2,
             args=["--max-reject-rate", "2"]),
        Case("unknown-option", events_csv("user_id", []), status=2, args=["--frobnicate"]),
        Case("both-orders", events_csv("user_id", []), status=2,
             args=["--dayfirst", "--monthfirst"]),
    ]
    return out


CASES = cases()


@pytest.fixture(scope="module")
def database():
    name = "test_load_fuzz"
    db.drop_database(name)
    warehouse.init(name)  # starts the server when it is the embedded one
    with pytest.MonkeyPatch.context() as patch:
        # Hundreds of loads in one process: skip asking pg_ctl each time whether the server
        # (just started) runs. The database itself is real.
        if hasattr(warehouse, "up"):
            patch.setattr(warehouse, "up", lambda quiet=False: None)
        yield name
    db.drop_database(name)


@pytest.fixture(scope="module")
def check(database: str):
    """One connection for the tests' own reads (each case ends its transaction)."""
    with db.connect(database) as conn:
        yield conn


def _counts(conn) -> dict[tuple[str, str], int]:
    from python_jobs import contract

    union = " union all ".join(
        f"select '{t}' as t, _batch_id as b, count(*) as n from raw.{t} group by 2"
        for t in contract.TABLES)
    frame = db.read_sql(conn, union)
    registry = db.read_sql(conn, "select table_name as t, batch_name as b, rows_loaded as n "
                                 "from raw.load_batches")
    conn.commit()
    out = {(r.t, r.b): int(r.n) for r in frame.itertuples()}
    out.update({("registry:" + r.t, r.b): int(r.n) for r in registry.itertuples()})
    return out


def test_fuzz_cases_are_many_and_distinct():
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fuzz(case: Case, database: str, check, tmp_path: Path, capsys, sentinel_loaded):
    path = tmp_path / f"{case.id.split(':')[0]}{case.suffix}"
    if callable(case.content):
        path = case.content(path)
    else:
        path.write_bytes(case.content)
    batch = path.name
    if "--batch-name" in case.args:
        batch = case.args[case.args.index("--batch-name") + 1]
    table_args = [] if "--table" in case.args else ["--table", case.table]
    before = _counts(check)
    capsys.readouterr()
    try:
        status = load.main([str(path), *table_args, *case.args, "--database", database,
                            "--log-level", "WARNING"])
    except SystemExit as exc:  # argparse
        status = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    assert status == case.status, err
    if status != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err
        if case.message:
            assert case.message in lines[0], lines[0]
        if case.message:  # input errors name the file
            assert path.name in lines[0], lines[0]
    after = _counts(check)
    for key in set(before) | set(after):
        if key[1] != batch:  # no other batch gained or lost a row
            assert before.get(key) == after.get(key), key
    table = case.table
    conn = check
    loaded = int(db.read_sql(conn, f"select count(*) as n from raw.{table} "
                                   "where _batch_id = %s", (batch,))["n"].iloc[0])
    rejects = db.read_sql(conn, "select reason, record, row_number from raw.load_rejects "
                                "where table_name = %s and batch_id = %s order by row_number",
                          (table, batch))
    registry = db.read_sql(conn, "select rows_loaded, rows_rejected from raw.load_batches "
                                 "where table_name = %s and batch_name = %s",
                           (table, batch))
    values = None
    if case.expect:
        key = "event_id" if table == "listening_events" else "track_id"
        values = db.read_sql(conn, f"select {case.expect[0]} as v from raw.{table} "
                                   f"where _batch_id = %s order by {key}",
                             (batch,))["v"].tolist()
    conn.commit()
    if status != 0:
        assert loaded == 0 and rejects.empty and registry.empty  # nothing committed
        return
    assert f"{loaded} rows loaded" in out and f"{len(rejects)} rejected" in out
    assert registry.values.tolist() == [[loaded, len(rejects)]]
    if case.rows is not None:
        assert loaded + len(rejects) == case.rows
    if case.rejects is not None:
        assert len(rejects) == case.rejects, rejects["reason"].tolist()
    for reason, record in zip(rejects["reason"], rejects["record"], strict=True):
        assert json.loads(record)  # the record as read, as JSON
        if case.reason:
            assert case.reason in reason, reason
    if case.expect:
        assert values == case.expect[1]
    if case.row_numbers is not None:
        assert rejects["row_number"].tolist() == case.row_numbers


@pytest.fixture(scope="module")
def sentinel_loaded(database: str, tmp_path_factory) -> None:
    """Rows of other batches (and one inserted by hand) that no case may touch."""
    folder = tmp_path_factory.mktemp("sentinel")
    path = folder / "sentinel.csv"
    path.write_bytes(events_csv("user_id", ["5"]))
    assert load.main([str(path), "--table", "listening_events", "--database", database]) == 0
    tracks = folder / "sentinel_tracks.csv"
    tracks.write_bytes(_tracks(["s1,n,a,1"]))
    assert load.main([str(tracks), "--table", "tracks", "--database", database]) == 0
    with db.connect(database) as conn:
        db.execute(conn, "insert into raw.listening_events (event_id, user_id, track_id, "
                         "started_at, ms_played, _batch_id, _loaded_at) values "
                         "('psql', 1, 't', '2026-01-01', 1, 'by hand', now())")
