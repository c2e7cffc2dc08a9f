"""A small load-testing client: replay events to a collector at a rate, with retries.

Events come as NDJSON lines: from the generator (python_jobs.generate, in memory, nothing
written to the warehouse), or from an NDJSON or CSV file. They are sent in requests of
--batch events by --concurrency workers; a request is retried (same events, so the
collector's exactly-once rule applies) after a connection error, a timeout, a 429 (after its
Retry-After) or a 5xx, until --give-up-after seconds have passed for it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd

from python_jobs import truth

NDJSON = "application/x-ndjson"


@dataclass
class Batch:
    event_ids: list[str]
    lines: list[str]
    live: bool = False  # started_at is set as the request is first sent
    body: bytes = b""
    acked: bool = False
    attempts: int = 0
    response: dict | None = None  # the collector's answer to the acknowledged attempt
    resent: dict | None = None  # its answer to the deliberate resend, if any


@dataclass
class Stats:
    requests: int = 0
    events: int = 0
    acked_events: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    resends: int = 0  # acknowledged requests sent again on purpose (--resend-share)
    given_up: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of each acknowledged attempt

    def summary(self) -> dict:
        lat = np.asarray(self.latencies) * 1000
        return {"requests": self.requests, "events": self.events,
                "acked_events": self.acked_events, "stored": self.stored,
                "duplicates": self.duplicates, "rejected": self.rejected,
                "retries": self.retries, "resends": self.resends, "given_up": self.given_up,
                "seconds": round(self.seconds, 2),
                "events_per_second": round(self.acked_events / self.seconds, 1)
                if self.seconds else None,
                "ack_ms_p50": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                "ack_ms_p99": round(float(np.percentile(lat, 99)), 1) if len(lat) else None}


def frame_lines(frame: pd.DataFrame) -> list[str]:
    """Events as NDJSON lines (timestamps as ISO 8601 UTC, missing values as null)."""
    if not len(frame):
        return []
    frame = frame.copy()
    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            text = frame[name].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            frame[name] = text.where(frame[name].notna(), None)
    return frame.to_json(orient="records", lines=True).splitlines()


def generated(sessions: int, seed: int = truth.DEFAULT_SEED,
              start_date: str = truth.DEFAULT_START_DATE,
              days: int = truth.DEFAULT_DAYS) -> Iterator[pd.DataFrame]:
    """The generator's listening events (its quality rows included: repeated deliveries,
    impossible values), chunk by chunk, without touching a database."""
    from python_jobs import generate

    start = datetime.fromisoformat(start_date)
    window = generate.Window(generate._ms(start), generate._ms(start + timedelta(days=days)))
    catalogue = generate.build_catalogue(seed, window.start_ms)
    yield from generate.generate_chunks(seed, sessions, window, catalogue, generate.Totals())


def file_frames(path: Path) -> Iterator[pd.DataFrame | list[str]]:
    """An NDJSON file's lines as they are, or a CSV file's rows (values as text)."""
    if path.suffix.lower() in (".ndjson", ".jsonl", ".json"):
        with open(path, encoding="utf-8") as handle:
            yield [line.rstrip("\n") for line in handle if line.strip()]
        return
    yield from pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=100_000)


def batches(chunks: Iterable[pd.DataFrame | list[str]], size: int, *, id_prefix: str = "",
            live: bool = False, limit: int | None = None) -> Iterator[Batch]:
    """Requests of `size` events. id_prefix: prepended to every event_id (replaying a data
    set the warehouse already holds as new events); live: started_at = now, set as each
    request is first sent (events arriving as they happen)."""
    sent = 0
    for chunk in chunks:
        if isinstance(chunk, pd.DataFrame):
            frame = chunk.copy()
            if id_prefix:
                frame["event_id"] = id_prefix + frame["event_id"].astype(str)
            lines = frame_lines(frame.drop(columns=["started_at"]) if live else frame)
            ids = frame["event_id"].astype(str).tolist()
        else:
            lines, ids = _prefixed(chunk, id_prefix)
        for lo in range(0, len(lines), size):
            if limit is not None and sent >= limit:
                return
            hi = min(lo + size, len(lines), lo + (limit - sent if limit else size))
            part = lines[lo:hi]
            sent += len(part)
            yield Batch(ids[lo:hi], part, live=live)


def _prefixed(lines: list[str], prefix: str) -> tuple[list[str], list[str]]:
    out, ids = [], []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            out.append(line)
            ids.append("")
            continue
        if isinstance(value, dict) and prefix and value.get("event_id") is not None:
            value["event_id"] = prefix + str(value["event_id"])
            line = json.dumps(value)
        out.append(line)
        ids.append(str(value.get("event_id")) if isinstance(value, dict) else "")
    return out, ids


async def _post(session: aiohttp.ClientSession, url: str, batch: Batch, stats: Stats, *,
                give_up_after: float, timeout: float) -> bool:
    """Send one request until acknowledged (True) or give_up_after seconds pass (False)."""
    start = time.monotonic()
    delay = 0.05
    while True:
        batch.attempts += 1
        stats.requests += 1
        sent = time.monotonic()
        wait = None
        try:
            async with session.post(url, data=batch.body, headers={"Content-Type": NDJSON},
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                if response.status == 200:
                    batch.response = await response.json()
                    stats.latencies.append(time.monotonic() - sent)
                    return True
                if response.status in (401, 403, 413):
                    raise PermissionError(f"{response.status}: {await response.text()}")
                if response.status == 429 or response.status >= 500:
                    retry_after = response.headers.get("Retry-After")
                    wait = float(retry_after) if retry_after else None
                else:
                    raise RuntimeError(f"{response.status}: {await response.text()}")
        except (aiohttp.ClientError, TimeoutError, ConnectionError):
            pass  # the collector may have the events or not: sending again is safe
        if time.monotonic() - start > give_up_after:
            return False
        stats.retries += 1
        await asyncio.sleep(wait if wait is not None else delay * (0.5 + random.random()))
        delay = min(delay * 2, 2.0)


async def send(url: str, token: str, requests: Iterable[Batch], *, rate: float = 0,
               concurrency: int = 8, give_up_after: float = 120, timeout: float = 30,
               resend_share: float = 0, seed: int = 0) -> tuple[Stats, list[Batch]]:
    """Send every request; rate = events per second over all workers (0: as fast as the
    collector answers). resend_share: that share of acknowledged requests is sent again
    (an acknowledgement the client "lost"), which must change nothing in raw."""
    stats = Stats()
    done: list[Batch] = []
    source = iter(requests)
    rng = random.Random(seed)
    begin = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=concurrency)

    scheduled = 0  # events given a send time so far

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal scheduled
        for batch in source:
            if rate:
                # The send time is taken before sleeping, so workers that pick requests at
                # the same moment get successive times, not one (a burst every round trip).
                scheduled += len(batch.lines)
                await asyncio.sleep(max(0.0, begin + scheduled / rate - time.monotonic()))
            lines = batch.lines
            if batch.live:
                now = datetime.now(UTC).strftime('"%Y-%m-%dT%H:%M:%S.%fZ"')
                lines = [line[:-1] + f',"started_at":{now}}}' for line in lines]
            batch.body = ("\n".join(lines) + "\n").encode()
            stats.events += len(batch.lines)
            batch.acked = await _post(session, url, batch, stats,
                                      give_up_after=give_up_after, timeout=timeout)
            if not batch.acked:
                stats.given_up += 1
            else:
                first = batch.response
                if resend_share and rng.random() < resend_share:
                    stats.resends += 1
                    await _post(session, url, batch, stats, give_up_after=give_up_after,
                                timeout=timeout)
                    batch.resent, batch.response = batch.response, first
                stats.acked_events += len(batch.lines)
                stats.stored += batch.response["stored"]
                stats.duplicates += batch.response["duplicates"]
                stats.rejected += batch.response["rejected"]
            done.append(batch)

    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    stats.seconds = time.monotonic() - begin
    return stats, done
