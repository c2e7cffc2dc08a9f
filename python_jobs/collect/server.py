"""The HTTP collector: POST /v1/events, GET /health (aiohttp).

Requests wait in a bounded in-memory queue; one flusher writes them to raw as micro-batches
(store.check, then store.write): as soon as --flush-events events wait, else at most one
micro-batch per --flush-seconds (an event waits that long at most, plus the micro-batch in
progress), and only after its commit answers each request. A 200 therefore means every
event it lists as stored or duplicate is committed in raw: nothing is acknowledged that a
crash could lose, so the collector needs no spool. SIGTERM (or SIGINT) stops accepting
(503), writes everything queued, answers those requests and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import math
import multiprocessing
import os
import signal
import socket
import sys
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import psycopg2
from aiohttp import web

from python_jobs import db, exact, logs
from python_jobs.collect import events as ev
from python_jobs.collect import store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8787
    token: str = field(default="", repr=False)  # never logged
    database: str | None = None
    flush_events: int = 5_000
    flush_seconds: float = 0.1
    queue_events: int = 100_000  # queued or being written; beyond: 429
    max_body_bytes: int = 16 << 20
    workers: int = 1  # processes sharing the port
    options: exact.Options = exact.DEFAULTS


@dataclass
class _Pending:
    request: store.Request
    done: asyncio.Future
    arrived: float


@dataclass
class _State:
    settings: Settings
    pending: deque = field(default_factory=deque)
    queued: int = 0  # events waiting or being written
    taken: int = 0  # of which in a micro-batch being checked or written
    stopping: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    counts: dict = field(default_factory=lambda: dict.fromkeys(
        ("batches", "stored", "duplicates", "rejected", "refused_full", "failed_flushes"), 0))


class _Connection:
    """The flusher thread's one connection, opened through db.connect and reopened after
    the server went away."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self.manager = None
        self.conn = None

    def get(self) -> db.Connection:
        if self.conn is None or self.conn.closed:
            self.manager = db.connect(self.database)
            self.conn = self.manager.__enter__()
        return self.conn

    def failed(self, exc: BaseException) -> None:
        if self.conn is not None and not self.conn.closed:
            self.conn.rollback()
        if isinstance(exc, psycopg2.OperationalError) and self.manager is not None:
            # db.connect turns a full disk into SystemExit: here it is one more failed flush.
            with contextlib.suppress(BaseException):
                self.manager.__exit__(type(exc), exc, exc.__traceback__)
            self.conn = None

    def close(self) -> None:
        if self.conn is not None and not self.conn.closed:
            self.manager.__exit__(None, None, None)
        self.conn = None


def _write(connection: _Connection, checked: store.Checked, settings: Settings,
           ) -> store.Written:
    conn = connection.get()
    try:
        began = time.monotonic()
        written = store.write(conn, checked, source=f"collector {settings.host}:"
                                                    f"{settings.port}")
        wrote = time.monotonic()
        conn.commit()
        log.debug("micro-batch %s: %d events, write %.0f ms, commit %.0f ms",
                  written.batch_name, len(checked.flat), (wrote - began) * 1000,
                  (time.monotonic() - wrote) * 1000)
    except BaseException as exc:
        connection.failed(exc)
        raise
    return written


def _answer(state: _State, batch: list[_Pending], size: int, written: store.Written | None,
            exc: BaseException | None) -> None:
    """Answer a micro-batch's requests: stored (its name) or not (the error: 503)."""
    state.queued -= size
    state.taken -= size
    if written is None:
        state.counts["failed_flushes"] += 1
        log.error("micro-batch of %d events not written (%s): answered 503, clients "
                  "retry", size, str(exc).strip().splitlines()[0] if str(exc) else exc)
    else:
        for key in ("stored", "duplicates", "rejected"):
            state.counts[key] += getattr(written, key)
        state.counts["batches"] += 1
    for p in batch:
        if not p.done.done():
            if written is None:
                p.done.set_exception(exc)
            else:
                p.done.set_result(written.batch_name)


async def _flusher(state: _State, connection: _Connection, pool: ThreadPoolExecutor,
                   checker: ThreadPoolExecutor) -> None:
    """Write queued requests as micro-batches until stopped and drained.

    Two stages: the contract's check of a micro-batch (checker thread, no database) runs
    while the previous one is written and committed (pool thread, one connection), so the
    database's work overlaps the parsing; writes stay one at a time and in order, and each
    request is answered only after its own micro-batch committed."""
    settings = state.settings
    loop = asyncio.get_running_loop()
    # Micro-batches start at least flush_seconds apart (counted from the start), unless
    # flush_events wait: an event that finds the flusher idle for that long goes at once,
    # none waits longer than flush_seconds plus the micro-batch in progress, and the
    # registry gets at most one batch per flush_seconds at low rates.
    last_start = time.monotonic()
    writing: asyncio.Future | None = None

    async def write(batch: list[_Pending], size: int, checked: store.Checked) -> None:
        try:
            written = await loop.run_in_executor(pool, _write, connection, checked, settings)
        except Exception as exc:
            _answer(state, batch, size, None, exc)
        else:
            _answer(state, batch, size, written, None)

    while not (state.stopping and not state.pending):
        if not state.pending:
            state.wakeup.clear()
            await state.wakeup.wait()
            continue
        deadline = max(state.pending[0].arrived, last_start + settings.flush_seconds)
        while (state.queued - state.taken < settings.flush_events and not state.stopping
               and (left := deadline - time.monotonic()) > 0):
            state.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.wakeup.wait(), left)
        batch: list[_Pending] = []
        size = 0
        while state.pending and (not batch or size + len(state.pending[0].request.events)
                                 <= settings.flush_events):
            batch.append(state.pending.popleft())
            size += len(batch[-1].request.events)
        state.taken += size
        last_start = time.monotonic()
        try:
            checked = await loop.run_in_executor(
                checker, store.check, [p.request for p in batch], settings.options)
        except Exception as exc:
            _answer(state, batch, size, None, exc)
            continue
        if writing is not None:  # one write at a time, in order; the next check meanwhile
            await writing
        writing = asyncio.ensure_future(write(batch, size, checked))
    if writing is not None:
        await writing


def _json(status: int, body: dict, **headers: str) -> web.Response:
    return web.json_response(body, status=status, headers=headers or None)


def _retry_after(state: _State) -> str:
    return str(max(1, math.ceil(state.settings.flush_seconds * 2)))


def _authorised(request: web.Request, token: str) -> web.Response | None:
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer "):
        return _json(401, {"error": "missing bearer token"},
                     **{"WWW-Authenticate": 'Bearer realm="collector"'})
    if not hmac.compare_digest(given.removeprefix("Bearer ").encode(), token.encode()):
        return _json(403, {"error": "wrong token"})
    return None


def _handlers(state: _State):
    settings = state.settings

    async def post_events(request: web.Request) -> web.Response:
        refused = _authorised(request, settings.token)
        if refused is not None:
            return refused
        if state.stopping:
            return _json(503, {"error": "shutting down"}, **{"Retry-After": "1"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _json(413, {"error": f"body over {settings.max_body_bytes} bytes: send "
                                        "fewer events per request"})
        request_id = uuid.uuid4().hex
        try:
            received = ev.parse_body(body)
        except ValueError as exc:
            received = [ev.Event(None, body[:ev.MAX_LINE_CHARS].decode("utf-8", "replace"),
                                 f"not a JSON array or NDJSON: {exc}")]
        if len(received) > settings.queue_events:
            return _json(413, {"error": f"{len(received)} events in one request, more than "
                                        f"the queue holds ({settings.queue_events})"})
        if state.queued + len(received) > settings.queue_events:
            state.counts["refused_full"] += 1
            return _json(429, {"error": "queue full, retry later"},
                         **{"Retry-After": _retry_after(state)})
        pending = store.Request(request_id, received)
        done = asyncio.get_running_loop().create_future()
        if received:
            state.pending.append(_Pending(pending, done, time.monotonic()))
            state.queued += len(received)
            state.wakeup.set()
        else:
            done.set_result(None)
        try:
            batch = await asyncio.shield(done)
        except Exception:
            return _json(503, {"error": "not stored (database unavailable); retry",
                               "request_id": request_id}, **{"Retry-After": "1"})
        errors = [{"index": i, "event_id": e.event_id, "reason": pending.reasons[i]}
                  for i, e in enumerate(received) if pending.status[i] == store.REJECTED]
        return _json(200, {
            "request_id": request_id, "batch": batch, "received": len(received),
            "stored": pending.status.count(store.STORED),
            "duplicates": pending.status.count(store.DUPLICATE),
            "rejected": len(errors), "errors": errors})

    async def health(_request: web.Request) -> web.Response:
        body = {"status": "stopping" if state.stopping else "ok",
                "queued_events": state.queued, **state.counts}
        return _json(503 if state.stopping else 200, body)

    return post_events, health


def _tune_gc() -> None:
    """Fewer passes of the cyclic garbage collector. Queued events are many small dicts
    without cycles (freed by reference counting), which each pass walks again: under a
    flood that was a third of the parsing time. What start-up made is frozen out of it."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def serve(settings: Settings, ready=None) -> int:
    """Run until SIGTERM/SIGINT; 0 when everything queued was written."""
    _tune_gc()
    state = _State(settings)
    post_events, health = _handlers(state)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app.router.add_post("/v1/events", post_events)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=30)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True,
                       reuse_port=settings.workers > 1, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    connection = _Connection(settings.database)
    with (ThreadPoolExecutor(1, thread_name_prefix="flusher") as pool,
          ThreadPoolExecutor(1, thread_name_prefix="checker") as checker):
        flusher = asyncio.create_task(_flusher(state, connection, pool, checker))
        print(f"collector listening on http://{settings.host}:{port}/v1/events "
              f"(flush every {settings.flush_events} events or {settings.flush_seconds:g} s)",
              flush=True)
        if ready is not None:
            ready(port)
        await stop.wait()
        log.info("stopping: writing %d queued events", state.queued)
        failed_before = state.counts["failed_flushes"]
        state.stopping = True
        state.wakeup.set()
        await asyncio.gather(flusher, runner.cleanup())
        await loop.run_in_executor(pool, connection.close)
    print(f"collector stopped: {state.counts['stored']} events stored, "
          f"{state.counts['duplicates']} duplicates, {state.counts['rejected']} rejected in "
          f"{state.counts['batches']} micro-batches", flush=True)
    # 1 when events queued at the stop could not be written (their requests got 503).
    return 0 if state.counts["failed_flushes"] == failed_before else 1


def _die_with_parent(parent: int) -> None:
    """A worker gets SIGKILL when the parent dies (Linux), so kill -9 of `serve` stops the
    whole collector, as with one process: no orphan keeps the port and its queue."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _worker(settings: Settings, parent: int) -> None:
    _die_with_parent(parent)
    logs.setup(logging.getLevelName(log.getEffectiveLevel()))
    sys.exit(asyncio.run(serve(settings)))


def run(settings: Settings) -> int:
    store.ensure_schema(settings.database)
    try:
        if settings.workers == 1:
            return asyncio.run(serve(settings))
        return _run_workers(settings)
    except OSError as exc:  # the port is taken, the address is not this machine's
        print(f"python -m python_jobs.collect serve: error: {exc}", file=sys.stderr)
        return 2


def _run_workers(settings: Settings) -> int:
    """Several collector processes on one port (SO_REUSEPORT: the kernel spreads the
    connections), since one Python process parses and checks on one core at most. Each has
    its own queue and flusher; their micro-batches take turns under the table's lock."""
    if settings.port == 0:
        with socket.socket() as sock:
            sock.bind((settings.host, 0))
            settings = replace(settings, port=sock.getsockname()[1])
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(settings, os.getpid()))
               for _ in range(settings.workers)]
    for worker in workers:
        worker.start()

    def forward(signum, _frame) -> None:
        for worker in workers:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.join()
    return max(worker.exitcode or 0 for worker in workers)
