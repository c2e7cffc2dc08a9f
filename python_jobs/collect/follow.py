"""The near-real-time loop: build the event-driven models whenever raw has changed.

Every --poll seconds it reads the newest raw.load_changes entry; when there is one it has not
built yet (a collector micro-batch, a file load) and --interval seconds have passed since the
last build started, it runs `dbt build --selector near_real_time` (the incremental models fed
by raw.listening_events and the tests of only those; the incremental macros rebuild only the
days the changes touched, docs/incremental.md), then `dbt source freshness` on
listening_events, which warns when its newest row is older than the var
listening_events_warn_after_minutes. SIGTERM or SIGINT stops the loop (a running dbt is
stopped first).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from python_jobs import config, contract, db, dbt_cli

log = logging.getLogger(__name__)

SELECTOR = "near_real_time"
FRESHNESS_SELECT = "source:streaming.listening_events"


@dataclass(frozen=True)
class Settings:
    database: str | None = None
    interval: float = 60.0
    poll: float = 2.0
    warn_after_minutes: int | None = None
    selector: str = SELECTOR
    once: bool = False
    target_path: str | None = None


def newest_change(database: str | None) -> int:
    with db.connect(database) as conn:
        rows = db.read_sql(conn, f"select coalesce(max(change_id), 0) as c "
                                 f"from {contract.RAW_SCHEMA}.load_changes")
    return int(rows["c"].iloc[0])


class _Stop:
    requested = False


def _dbt(args: list[str], settings: Settings, stop: type[_Stop]) -> int:
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DBT_TARGET_PATH": settings.target_path or os.environ.get("DBT_TARGET_PATH")
           or str(config.ROOT / "target" / "follow")}
    if settings.database:
        env["PGDATABASE"] = settings.database
    if settings.warn_after_minutes is not None:
        args = [*args, "--vars", "{listening_events_warn_after_minutes: "
                                 f"{settings.warn_after_minutes}}}"]
    proc = subprocess.Popen([dbt_cli.DBT, *args], cwd=config.ROOT, env=env)
    while proc.poll() is None:
        if stop.requested:
            proc.terminate()
            return proc.wait()
        time.sleep(0.2)
    return proc.returncode


def build_once(settings: Settings, stop: type[_Stop] = _Stop) -> tuple[int, int]:
    """One build and the freshness check; (build exit status, freshness exit status)."""
    # cautious: only tests whose every parent is built here (a test comparing a rebuilt model
    # with a table the daily run builds would compare new rows with old ones).
    built = _dbt(["build", "--selector", settings.selector, "--exclude-resource-type",
                  "unit_test", "--indirect-selection", "cautious", "--quiet"], settings, stop)
    if stop.requested:
        return built, 0
    fresh = _dbt(["source", "freshness", "--select", FRESHNESS_SELECT], settings, stop)
    return built, fresh


def run(settings: Settings) -> int:
    stop = _Stop

    def request_stop(_signum, _frame) -> None:
        stop.requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if settings.once:
        built, _ = build_once(settings, stop)
        return built
    built_up_to = -1
    last_start = 0.0
    status = 0
    while not stop.requested:
        change = newest_change(settings.database)
        if change != built_up_to and time.monotonic() - last_start >= settings.interval:
            last_start = time.monotonic()
            log.info("change %d not built yet: dbt build --selector %s", change,
                     settings.selector)
            status, _ = build_once(settings, stop)
            if status == 0:
                built_up_to = change
            log.info("build %s in %.1f s", "done" if status == 0 else f"failed ({status})",
                     time.monotonic() - last_start)
            continue
        time.sleep(settings.poll)
    return 0
