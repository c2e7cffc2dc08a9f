"""Real-data samples build through dbt unchanged: each loader's output is a valid raw layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from python_jobs import db, dbt_cli, load
from python_jobs.ingest import __main__ as ingest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"

pytestmark = pytest.mark.slow


def _load_raw(database: str) -> None:
    for table in ("users", "artists", "tracks"):
        assert load.main([str(FIXTURES / f"raw_{table}.csv"), "--table", table,
                          "--database", database]) == 0
    assert ingest.main(["events", str(FIXTURES / "raw_listening_events.csv"), "--format",
                        "raw", "--database", database]) == 0


def _load_mssd(database: str) -> None:
    assert ingest.main(["events", str(FIXTURES / "mssd_session_log.csv"),
                        str(FIXTURES / "mssd_track_features.csv"), "--format", "mssd",
                        "--database", database]) == 0


def _load_history(database: str) -> None:
    assert ingest.main(["events", str(FIXTURES / "streaming_history.json"), "--format",
                        "history", "--user-id", "42", "--tier", "free",
                        "--database", database]) == 0


@pytest.mark.parametrize("loader", [_load_raw, _load_mssd, _load_history],
                         ids=["raw", "mssd", "history"])
def test_sample_builds_through_dbt(loader, fresh_database, tmp_path):
    database = fresh_database(f"ingest_dbt_{loader.__name__.removeprefix('_load_')}")
    loader(database)
    # Data tests included: the marts must be consistent on real-shaped data, not only built.
    dbt_cli.run(database, tmp_path, "build", "--exclude-resource-type", "unit_test")
    with db.connect(database) as conn:
        plays = db.read_sql(conn, "select count(*) as n from marts.fct_plays")["n"].iloc[0]
        sessions = db.read_sql(conn, "select count(*) as n from marts.fct_sessions")["n"].iloc[0]
        raw = db.read_sql(conn, "select count(distinct event_id) as n "
                                "from raw.listening_events")["n"].iloc[0]
    assert 0 < sessions <= plays <= raw
