"""The benchmark's collector stage (python -m python_jobs.bench --collector).

On a database whose models are built, it starts a collector (default flush settings) and the
build loop (`collect follow`, default settings) as the commands a user runs, floods the
collector with the generator's events as new live plays (event ids prefixed, started_at =
now, so they join the generated users and tracks), then sends one probe event and waits
until the loop has built it into marts.fct_plays, then a second one; then, the loop
stopped, it sends events at a steady rate (see measure).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid

from python_jobs import config, db
from python_jobs.collect import client

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(args: list[str], env: dict[str, str], output=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "python_jobs.collect", *args],
                            cwd=config.ROOT, env=env, stdout=output, text=True)


def _stop(proc: subprocess.Popen) -> tuple[int, float]:
    """SIGTERM, wait; (exit status, peak RSS in MB)."""
    proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, round(usage.ru_maxrss / 1024, 1)


def _seen(database: str, event_id: str) -> bool:
    with db.connect(database) as conn:
        return not db.read_sql(conn, "select 1 from marts.fct_plays where play_id = %s",
                               (event_id,)).empty


def _probe(database: str, url: str, env: dict[str, str], seed: int, timeout: float,
           ) -> float | None:
    """Seconds from sending one live event to seeing it in marts.fct_plays (None: not
    within timeout)."""
    probe = f"probe-{uuid.uuid4().hex}"
    chunk = next(client.generated(1, seed)).head(1).assign(event_id=probe)
    sent = time.monotonic()
    asyncio.run(client.send(url, env["WAREHOUSE_COLLECTOR_TOKEN"],
                            client.batches([chunk], 1, live=True)))
    while time.monotonic() - sent < timeout:
        if _seen(database, probe):
            return round(time.monotonic() - sent, 1)
        time.sleep(1)
    return None


def _requests(sessions: int, seed: int, events: int) -> list[client.Batch]:
    """Requests of 500 of the generator's events as new live plays, made before the clock
    starts (enough sessions for the events; users past the database's own are unknown to
    the models, which changes nothing here)."""
    frames = client.generated(max(sessions, events // 10), seed)
    return list(client.batches(frames, 500, id_prefix=f"live-{uuid.uuid4().hex[:8]}-",
                               live=True, limit=events))


def measure(database: str, env: dict[str, str], *, events: int, sessions: int, seed: int,
            rate: float, rate_seconds: float = 10, workers: int | None = None,
            freshness_timeout: float = 600) -> dict:
    """With the build loop running: the collector's capacity (a flood of `events`: 8
    connections sending as fast as they are acknowledged) and event-to-fct_plays seconds.
    Then, the loop stopped, the collector's ack latency at a steady `rate` for
    `rate_seconds` (the client keeps to the rate whatever the answers take, on up to 32
    connections).

    Under the flood, latency is the queue the client keeps full (4,000 events in flight /
    events per second); at a steady rate it is what a sender waits for its answer."""
    port = _free_port()
    env = {**env, "PGDATABASE": database,
           "WAREHOUSE_COLLECTOR_TOKEN": secrets.token_urlsafe(24)}
    url = f"http://127.0.0.1:{port}/v1/events"
    token = env["WAREHOUSE_COLLECTOR_TOKEN"]
    server = _start(["serve", "--port", str(port), "--database", database,
                     *(["--workers", str(workers)] if workers else [])], env)
    line = server.stdout.readline()
    if "listening" not in line:
        raise SystemExit(f"collector did not start: {line}")
    # The loop's dbt output goes to a file (an unread pipe would fill and stop dbt).
    log_path = config.ROOT / "target" / "bench-follow.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as follow_log:
        loop = _start(["follow", "--database", database], env, follow_log)
    log.info("collect follow writes to %s", log_path)
    try:
        flood, _ = asyncio.run(client.send(url, token, _requests(sessions, seed, events),
                                           concurrency=8))
        # The first probe may be caught by a build already under way (the loop starts one
        # as soon as raw changes); the second, sent the moment the first is in fct_plays,
        # waits for the next build, which the loop starts --interval after the previous one:
        # close to the longest an event waits.
        freshness = _probe(database, url, env, seed, freshness_timeout)
        next_build = _probe(database, url, env, seed, freshness_timeout) if freshness else None
        loop_status, _ = _stop(loop)
        steady, _ = asyncio.run(client.send(
            url, token, _requests(sessions, seed, int(rate * rate_seconds)), rate=rate,
            concurrency=32))
    finally:
        if loop.returncode is None:
            _stop(loop)
        server_status, server_mb = _stop(server)
    figures = {**flood.summary(), "workers": workers or "default",
               "steady": {"rate": rate, **steady.summary()},
               "event_to_fct_plays_seconds": freshness,
               "event_to_fct_plays_seconds_next_build": next_build,
               "collector_peak_rss_mb": server_mb, "collector_exit": server_status,
               "follow_exit": loop_status}
    log.info("collector: %s", figures)
    return figures
