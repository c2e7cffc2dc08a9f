"""db.stream_sql's COPY path (python_jobs.pgcopy) gives back exactly what the table holds:
random rows of every type it maps, adversarial text and floats included, read in chunks of
several sizes; an empty result, a type it does not map, a query that fails half-way and a
reader that stops early behave as the cursor path does."""

from __future__ import annotations

import math
import os
import random
import threading
from datetime import date, datetime, timedelta

import pandas as pd
import psycopg2
import psycopg2.extras
import pytest

from python_jobs import db, pgcopy

COLUMNS = {"id": "bigint", "i4": "integer", "i2": "smallint", "f8": "double precision",
           "f4": "real", "t": "text", "v": "varchar(40)", "b": "boolean", "d": "date",
           "ts": "timestamp"}
NASTY_TEXT = ["", " ", "NULL", "\\N", '"', '""', ",", "a,b", 'say "hi"', "line\nbreak",
              "cr\r\nlf", "\t", "é ü 中文 🎵", "trailing ", "'", "\\", "1e5", "t", "f"]
NASTY_FLOATS = [0.0, -0.0, 0.1, 1 / 3, 1e-310, 5e-324, 1.7976931348623157e308, -2.5e-8,
                123456789.123456789, math.inf, -math.inf, math.nan]


def random_row(rng: random.Random, key: int) -> tuple:
    def maybe(value):
        return None if rng.random() < 0.15 else value

    text = rng.choice(NASTY_TEXT) if rng.random() < 0.5 else "".join(
        rng.choice("ab ,\"\n\\é") for _ in range(rng.randrange(12)))
    f8 = rng.choice(NASTY_FLOATS) if rng.random() < 0.3 else rng.uniform(-1e6, 1e6)
    f4 = rng.choice([0.5, -0.0, 3.4e38, math.inf, math.nan, 0.1])
    return (key, maybe(rng.randrange(-2**31, 2**31)), maybe(rng.randrange(-2**15, 2**15)),
            maybe(f8), maybe(f4), maybe(text), maybe(text[:40]), maybe(rng.random() < 0.5),
            maybe(date(1970, 1, 1) + timedelta(days=rng.randrange(40000))),
            maybe(datetime(2000, 1, 1) + timedelta(microseconds=rng.randrange(10**15))))


def same(expected, got) -> bool:
    if expected is None:
        return got is None or (not isinstance(got, str) and pd.isna(got))
    if isinstance(expected, float):
        return (math.isnan(expected) and math.isnan(got)) or (
            expected == got and math.copysign(1, expected) == math.copysign(1, got))
    if isinstance(expected, datetime):
        return pd.Timestamp(expected) == got
    return (expected == got and type(expected) is type(got)) or (
        isinstance(expected, int) and not isinstance(expected, bool) and expected == got)


DATABASE = os.environ.get("TEST_DATABASE_PREFIX", "test_") + "pgcopy"


@pytest.fixture(scope="module")
def conn():
    db.drop_database(DATABASE)
    with db.connect(DATABASE) as connection:
        yield connection
    db.drop_database(DATABASE)


@pytest.fixture(scope="module")
def rows(conn) -> list[tuple]:
    rng = random.Random(20261204)
    data = [random_row(rng, key) for key in range(600)]
    columns = ", ".join(f"{c} {t}" for c, t in COLUMNS.items())
    db.execute(conn, f"create temporary table values_read ({columns})")
    with conn.cursor() as cur:
        psycopg2.extras.execute_values(cur, "insert into values_read values %s", data)
    # what the table holds (real rounds to float4; text keeps every byte)
    with conn.cursor() as cur:
        cur.execute("select * from values_read order by id")
        return cur.fetchall()


@pytest.mark.parametrize("chunk_rows", [3, 256, 10_000])
def test_every_value_comes_back_exactly(conn, rows, chunk_rows):
    frames = list(pgcopy.stream(conn, "select * from values_read where id >= %s order by id",
                                (0,), chunk_rows))
    assert [len(f) for f in frames[:-1]] == [chunk_rows] * (len(frames) - 1)
    got = pd.concat(frames, ignore_index=True)
    assert list(got.columns) == list(COLUMNS) and len(got) == len(rows)
    wrong = [(column, expected[j], got.iat[i, j]) for i, expected in enumerate(rows)
             for j, column in enumerate(COLUMNS) if not same(expected[j], got.iat[i, j])]
    assert not wrong, wrong[:5]


def test_stream_sql_takes_the_copy_path_only_for_mapped_types(conn):
    assert pgcopy.stream(conn, "select 1.5::numeric as n", None, 10) is None
    assert pgcopy.stream(conn, "select 1 as a, 2 as a", None, 10) is None
    # the cursor path still reads what COPY cannot map (Decimal stays Decimal)
    frame = next(db.stream_sql(conn, "select 1.5::numeric as n"))
    assert str(frame.iat[0, 0]) == "1.5"
    assert list(db.stream_sql(conn, "select 1::int as a where false")) == []


def test_a_query_failing_mid_result_raises_the_servers_error(conn):
    query = "select 1 / (g - 150000) as x from generate_series(1, 200000) as g"
    with pytest.raises(psycopg2.errors.DivisionByZero):
        list(db.stream_sql(conn, query, chunk_rows=1000))
    conn.rollback()


def test_a_reader_that_stops_early_leaves_no_thread_and_the_connection_usable(conn):
    stream = pgcopy.stream(conn, "select g::bigint as g from generate_series(1, 2000000) g",
                           None, 1000)
    assert len(next(stream)) == 1000
    stream.close()
    assert not [t for t in threading.enumerate() if t.name == "pgcopy"]
    conn.rollback()
    assert db.read_sql(conn, "select 2 as x").iat[0, 0] == 2


def test_a_caller_writing_between_chunks_reads_on_a_separate_connection(conn):
    # COPY holds its connection until the result ends (far longer than one chunk here), so
    # the writes between chunks would fail on the reading connection itself
    db.execute(conn, "create temporary table written (n bigint)")
    query = ("select g::bigint as g, md5(g::text) as h, md5(g::text) as i "
             "from generate_series(1, 2000000) g")
    seen = 0
    for chunk in db.stream_sql(conn, query, None, 50_000, separate_connection=True):
        db.copy_frame(conn, "pg_temp.written", chunk[["g"]].rename(columns={"g": "n"}))
        seen += len(chunk)
    assert seen == 2_000_000
    assert db.read_sql(conn, "select count(*) as n, sum(n) as s from written").iloc[0].tolist() \
        == [2_000_000, 2_000_000 * 2_000_001 // 2]
