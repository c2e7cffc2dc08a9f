"""The HTTP collector as a real process on loopback: exactly once through retries, a
kill -9 and a restart as two worker processes, rejects with reasons, tokens, backpressure
and a graceful stop."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import pandas as pd
import pyarrow as pa
import pytest
import requests

from python_jobs import config, contract, db
from python_jobs.collect import client, store
from python_jobs.collect import events as ev

TOKEN = "test-token-" + "x" * 20
# 6,600 generated sessions are the 100k events (their own repeated deliveries
# included): 13 s for that test on the idle 2-core machine.
SESSIONS = int(os.environ.get("COLLECT_TEST_SESSIONS", 6_600))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(database: str, port: int, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(config.ROOT), "WAREHOUSE_COLLECTOR_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "python_jobs.collect", "serve", "--port", str(port),
         "--database", database, *extra],
        cwd=config.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening" in line, line + proc.stderr.read()
    return proc


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/events"


def _post(port: int, body: str, token: str | None = TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(_url(port), data=body.encode(), headers=headers, timeout=60)


def _query(database: str, sql: str) -> list:
    with db.connect(database) as conn:
        return db.read_sql(conn, sql).values.tolist()


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_every_event_lands_once_through_retries_and_a_kill(fresh_database):
    database = fresh_database("collect_once")
    port = _free_port()
    proc = _serve(database, port, "--flush-events", "2000", "--flush-seconds", "0.05")
    batches = list(client.batches(client.generated(SESSIONS), 250))
    sent_ids = {i for b in batches for i in b.event_ids}
    kill_after = len(sent_ids) // 2  # rows in raw when the collector is killed: midway
    result: dict = {}

    def send() -> None:
        result["stats"], result["done"] = asyncio.run(client.send(
            _url(port), TOKEN, batches, concurrency=8, give_up_after=90, resend_share=0.05,
            seed=1))

    sender = threading.Thread(target=send)
    sender.start()
    try:
        while _query(database, "select count(*) from raw.listening_events")[0][0] < kill_after:
            time.sleep(0.2)
        proc.kill()  # kill -9: whatever was queued but not committed is unacknowledged
        proc.wait()
        stored_at_kill = _query(database, "select count(*) from raw.listening_events")[0][0]
        time.sleep(0.5)
        # Restarted as two processes on the port: exactly once holds across them too.
        proc = _serve(database, port, "--flush-events", "2000", "--flush-seconds", "0.05",
                      "--workers", "2")
        sender.join(timeout=240)
    finally:
        assert _stop(proc) == 0
    stats = result["stats"]
    assert stats.given_up == 0 and stats.rejected == 0
    assert stats.retries > 0, "the kill must have cut some requests off"
    assert stats.resends > 0
    assert kill_after <= stored_at_kill < len(sent_ids)
    rows = _query(database, "select event_id, count(*) from raw.listening_events group by 1")
    assert max(n for _, n in rows) == 1  # exactly once, whatever was retried or resent
    assert {i for i, _ in rows} == sent_ids  # every event sent is in raw
    # Every acknowledged request's events were durable before its answer: all in raw. A
    # deliberate resend of an acknowledged request stores nothing again.
    assert all(b.acked for b in result["done"])
    assert all(b.resent["stored"] == 0 for b in result["done"] if b.resent)
    assert stats.stored + stats.duplicates == stats.acked_events == stats.events
    # The registry: one batch and one change per micro-batch that stored rows, day ranges
    # covering its rows (what the incremental models read).
    registry = _query(database, """
        select count(*), sum(b.rows_loaded), bool_and(c.min_day <= r.lo and c.max_day >= r.hi)
        from raw.load_batches b
        join raw.load_changes c using (table_name, batch_name)
        join (select _batch_id, min(started_at)::date as lo, max(started_at)::date as hi
              from raw.listening_events group by 1) r on r._batch_id = b.batch_name""")
    assert registry[0][1] == len(sent_ids) and registry[0][2]
    assert _query(database, "select count(*) from raw.load_batches where rows_loaded > 0"
                  )[0][0] == registry[0][0]


def _good(i: int, **changes) -> dict:
    event = {"event_id": f"e{i}", "user_id": 7, "track_id": "t1",
             "started_at": "2026-03-01T10:00:00Z", "ms_played": 1000}
    event.update(changes)
    return {k: v for k, v in event.items() if v is not _DROP}


_DROP = object()
# (event, a word its reason must contain): each breaks one rule of the raw contract.
MALFORMED = [
    *[(_good(0, **{c: _DROP}), f"{c}: required value missing")
      for c in ("event_id", "user_id", "track_id", "started_at", "ms_played")],
    *[(_good(0, **{c: None}), f"{c}: required value missing")
      for c in ("event_id", "user_id", "track_id", "started_at", "ms_played")],
    (_good(0, user_id="abc"), "user_id: not a valid bigint"),
    (_good(0, user_id=1.5), "user_id: not a valid bigint"),
    (_good(0, user_id=2**63), "user_id: out of range for bigint"),
    (_good(0, user_id=True), "user_id: not a valid bigint"),
    (_good(0, ms_played=2**31), "ms_played: out of range for integer"),
    (_good(0, ms_played="1e3"), "ms_played: not a valid integer"),
    (_good(0, ms_played=""), "ms_played: required value missing"),
    (_good(0, started_at="2026-02-30T10:00:00Z"), "started_at: no such date or time"),
    (_good(0, started_at="now"), "started_at: not a valid timestamp"),
    (_good(0, started_at="10:00"), "started_at: not a valid timestamp"),
    (_good(0, started_at=1767225600), "started_at: not a valid timestamp"),
    (_good(0, started_at="2026-03-01T25:00:00Z"), "started_at: no such date or time"),
    (_good(0, context_type="car"), "context_type: not one of"),
    (_good(0, device="fridge"), "device: not one of"),
    (_good(0, reason_end="bored"), "reason_end: not one of"),
    (_good(0, position_in_context=0), "position_in_context: below 1"),
    (_good(0, is_shuffle="maybe"), "is_shuffle: not a valid boolean"),
    (_good(0, track_id="a\x00b"), "track_id: contains a NUL byte"),
    (_good(0, track_id={"id": 1}), "track_id: not a single value"),
    (_good(0, user_id=[1, 2]), "user_id: not a single value"),
]
BROKEN_LINES = [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"),
                ('"text"', "not a JSON object"), ('{"ms_played": NaN}', "not valid JSON"),
                ("42", "not a JSON object")]


def test_malformed_events_are_rejected_with_reasons(fresh_database):
    database = fresh_database("collect_rejects")
    port = _free_port()
    proc = _serve(database, port)
    try:
        lines = [json.dumps({**event, "event_id": event.get("event_id") and f"bad{k}"}
                            if event.get("event_id") else event)
                 for k, (event, _) in enumerate(MALFORMED)]
        lines += [text for text, _ in BROKEN_LINES]
        lines.insert(3, json.dumps(_good(1, ms_played="3.0", is_shuffle="yes")))
        lines.append(json.dumps(_good(2, extra_field={"ignored": True})))
        answer = _post(port, "\n".join(lines)).json()
        expected = [why for _, why in MALFORMED] + [why for _, why in BROKEN_LINES]
        assert answer["stored"] == 2 and answer["rejected"] == len(expected)
        errors = sorted(answer["errors"], key=lambda e: e["index"])
        for error, why in zip(errors, expected, strict=True):
            assert why in error["reason"], (error, why)
        # A JSON array that is not JSON at all: one reject for the whole body.
        whole = _post(port, '[{"event_id": "x"').json()
        assert whole["rejected"] == 1 and "not a JSON array" in whole["errors"][0]["reason"]
    finally:
        assert _stop(proc) == 0
    rejects = _query(database, "select row_number, reason, record from raw.load_rejects "
                               "order by batch_id, row_number")
    assert len(rejects) == len(expected) + 1
    assert all(reason and record for _, reason, record in rejects)
    assert sorted(_query(database, "select event_id, ms_played, is_shuffle "
                                   "from raw.listening_events")) == [["e1", 3, True],
                                                                     ["e2", 1000, None]]


def test_tokens_backpressure_and_a_graceful_stop(fresh_database):
    database = fresh_database("collect_stop")
    port = _free_port()
    # Nothing is written before 30 s or 100000 events: requests wait in the queue.
    proc = _serve(database, port, "--queue-events", "1000", "--flush-seconds", "30",
                  "--flush-events", "100000")
    body = "\n".join(json.dumps(_good(i)) for i in range(600))
    try:
        assert _post(port, body, token=None).status_code == 401
        assert _post(port, body, token="wrong").status_code == 403
        assert _post(port, body, token=TOKEN[:-1]).status_code == 403
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).json()[
            "queued_events"] == 0
        first: dict = {}
        waiting = threading.Thread(target=lambda: first.update(r=_post(port, body)))
        waiting.start()
        while requests.get(f"http://127.0.0.1:{port}/health",
                           timeout=10).json()["queued_events"] < 600:
            time.sleep(0.05)
        full = _post(port, "\n".join(json.dumps(_good(i)) for i in range(600, 1200)))
        assert full.status_code == 429 and int(full.headers["Retry-After"]) >= 1
        assert "r" not in first  # not acknowledged: not written yet
    finally:
        status = _stop(proc)  # SIGTERM: the queued request is written, then answered
    waiting.join(timeout=30)
    assert status == 0
    assert first["r"].status_code == 200 and first["r"].json()["stored"] == 600
    assert _query(database, "select count(*), count(distinct event_id) "
                            "from raw.listening_events") == [[600, 600]]


def test_the_collectors_index_leaves_file_loads_alone(fresh_database):
    """Re-deliveries from files stay possible (staging removes them); the unique index
    covers the collector's own rows only."""
    database = fresh_database("collect_index")
    store.ensure_schema(database)
    with db.connect(database) as conn:
        for batch in ("file-a", "file-b"):
            db.execute(conn, "insert into raw.listening_events (event_id, user_id, track_id, "
                             "started_at, ms_played, _batch_id, _loaded_at) values ('same', "
                             "1, 't', '2026-03-01', 1, %s, now())", (batch,))
    assert _query(database, "select count(*) from raw.listening_events") == [[2]]
    with pytest.raises(Exception, match="duplicate key"), db.connect(database) as conn:
        for n in (1, 2):
            db.execute(conn, "insert into raw.listening_events (event_id, user_id, track_id, "
                             "started_at, ms_played, _batch_id, _loaded_at) values ('c', 1, "
                             "'t', '2026-03-01', 1, %s, now())", (f"collector:{n}",))



def _reference_body(body: bytes) -> list:
    """The collector's parsing as first written (json's decode per line, every contract
    column looked at for nested values): what the fast path must give exactly."""
    def no_constants(name):
        raise ValueError(f"{name} is not a JSON number")

    decode = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=no_constants).decode
    out = []
    for line in body.decode("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            value = decode(line)
        except ValueError as exc:
            out.append((None, line[:ev.MAX_LINE_CHARS], f"not valid JSON: {exc}"))
            continue
        if not isinstance(value, dict):
            out.append((None, line[:ev.MAX_LINE_CHARS], "not a JSON object"))
            continue
        nested = sorted(k for k in ev.COLUMNS if isinstance(value.get(k), (dict, list)))
        out.append((value, None, "; ".join(f"{k}: not a single value (an object or array)"
                                           for k in nested) or None))
    return out


def _mutated_lines(rng: random.Random, n: int) -> list[str]:
    """Generated events, most valid, the others broken in one of many ways."""
    values = {"user_id": ["7", "-0", "3.0", "1e3", "9223372036854775808", "1.5", "true",
                          '"12"', '" 12 "', "null", '""', '"NA"', "[1]", "{}"],
              "ms_played": ["0", "2147483648", '"3.0"', "-1", "false", '"abc"', "1E2"],
              "started_at": ['"2026-03-01T10:00:00Z"', '"2026-03-01 10:00:00.1234567+05:30"',
                             '"2026-02-30"', "1767225600", '"now"', "null", '"\\u0000"'],
              "is_shuffle": ["true", "false", '"yes"', '"maybe"', "null", "1", "0", '"T"'],
              "device": ['"mobile"', '"fridge"', '"MOBILE"', "null", "true"],
              "position_in_context": ["1", "0", '"2"', "2.0", "-3"],
              "track_id": ['"t1"', '"a\\u0000b"', '"\\u00e9t\\u2028x"', "null", '{"a": 1}']}
    lines = []
    for i in range(n):
        event = {"event_id": f'"e{i}"', "user_id": "7", "track_id": '"t1"',
                 "started_at": '"2026-03-01T10:00:00Z"', "ms_played": "1000"}
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            column = rng.choice(list(values))
            event[column] = rng.choice(values[column])
        if rng.random() < 0.1:
            del event[rng.choice(list(event))]
        text = "{" + ", ".join(f'"{k}": {v}' for k, v in event.items()) + "}"
        kind = rng.random()
        if kind < 0.03:
            text = " " + text + " "
        elif kind < 0.06:
            text = text[:rng.randrange(1, len(text))]
        elif kind < 0.08:
            text = rng.choice(["[1, 2]", '"text"', "42", "NaN", '{"a": NaN}', "{} {}",
                               '{"event_id": "x"} extra', '{"a": 1, "a": [2]}', "\t"])
        lines.append(text)
    return lines


def test_the_fast_parsing_path_gives_the_reference_results():
    """parse_body and events.check (fast paths: the C scanner per line, a one-pass nested
    test, a boolean column cast by Arrow) against the plain decoding and a column of _text
    values through contract.check, over thousands of generated valid and broken events."""
    rng = random.Random(22)
    lines = _mutated_lines(rng, 3_000)
    body = ("\n".join(lines) + "\n").encode()
    fast = ev.parse_body(body)
    reference = _reference_body(body)
    assert [(e.fields, e.text, e.problem) for e in fast] == reference
    shaped = [e.fields for e in fast if e.problem is None]
    assert 1_000 < len(shaped) < len(fast)
    typed, reasons = ev.check(shaped)
    columns = {name: pa.array([ev._text(f.get(name)) for f in shaped], pa.string())
               for name in ev.COLUMNS}
    want_typed, want_reasons = contract.check(ev.TABLE, columns, len(shaped))
    assert list(reasons) == [r.rstrip("; ") for r in want_reasons]
    pd.testing.assert_frame_equal(typed, want_typed)
    assert 0 < (reasons == "").sum() < len(shaped)  # both kinds really occur


def test_the_look_up_of_stored_ids_uses_the_collectors_index(fresh_database):
    """The partial index serves the exactly-once look-up only if the query's predicate is
    written as the index's (a sequential scan of all of raw otherwise)."""
    database = fresh_database("collect_plan")
    store.ensure_schema(database)
    with db.connect(database) as conn:
        db.execute(conn, "set enable_seqscan = off")
        plan = db.read_sql(conn, f"explain select event_id from {store.RAW} where _batch_id "
                                 "like %s and event_id = any(%s)", (store.OWN_ROWS, ["a"]))
    assert store.INDEX in " ".join(plan.iloc[:, 0])


def test_kill_9_of_a_multi_worker_collector_stops_its_workers(fresh_database):
    """kill -9 of `serve --workers 2` is a crash of the whole collector: no worker is left
    holding the port (and acknowledging into a queue nobody restarts)."""
    import psutil

    database = fresh_database("collect_workers_kill")
    port = _free_port()
    proc = _serve(database, port, "--workers", "2")
    workers = [p for p in psutil.Process(proc.pid).children()
               if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]
    assert len(workers) == 2
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).ok
    proc.kill()
    proc.wait(timeout=10)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=10)


def test_the_client_keeps_to_its_rate_whatever_the_answers_take():
    """At a rate, requests leave on schedule (one per batch / rate seconds), not in bursts
    of --concurrency each time the answers to the previous ones arrive together."""
    from aiohttp import web

    arrivals: list[float] = []

    async def slow_collector(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        await request.read()
        await asyncio.sleep(0.3)  # every answer takes six sending intervals
        return web.json_response({"stored": 100, "duplicates": 0, "rejected": 0})

    async def run() -> client.Stats:
        app = web.Application()
        app.router.add_post("/v1/events", slow_collector)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        batches = [client.Batch([f"e{k}-{i}" for i in range(100)],
                                [json.dumps(_good(i)) for i in range(100)]) for k in range(40)]
        started[0] = time.monotonic()
        try:
            stats, _ = await client.send(_url(port), TOKEN, batches, rate=2_000,
                                         concurrency=8)
        finally:
            await runner.cleanup()
        return stats

    started = [0.0]
    stats = asyncio.run(run())
    assert stats.acked_events == 4_000 and not stats.given_up and len(arrivals) == 40
    # 100 events at 2,000 a second: the k-th request (from 0) is due (k + 1) * 50 ms after
    # the start and never leaves before (a loaded machine can only make it later). The
    # old pacing sent 8 at once, each time the answers to the previous 8 came back.
    early = [k for k, at in enumerate(sorted(arrivals))
             if at < started[0] + (k + 1) * 0.05]
    assert not early, early
