"""Retention cohorts and playlist funnels recover the generator's planted truth.

One generated data set (SESSIONS sessions, seed SEED) is built with
`dbt build --select +<retention and funnel marts>` (models, data tests and unit tests), then:

- Weekly retention (signup-week cohorts, tier segments, pooled over the cohorts whose week k
  is fully observed) is within 4 binomial standard errors of 0.85^k (free) / 0.93^k
  (premium) for k = 1..8, each with at least MIN_USERS users; the geometric fit (actives in
  week k / actives in week k - 1 over the same cohorts) is within SURVIVAL_TOLERANCE of 0.85
  / 0.93; week 0 is exactly 1 (every user is active in their signup week).
- Playlist drop-off: the largest step drop-off of all runs is 3 -> 4 or 4 -> 5, its band is
  03-05; in every playlist type x tier cell the continuation of each step k -> k+1 for
  k = 1..9 is within 4 standard errors (at least 0.01) of the planted probability
  (0.92, or 0.70 at k = 3, 4; +0.02/+0.04/-0.02 editorial/algorithmic/user; +0.02 premium).
  Runs cut at the 50-play session cap are censored, not counted as drop-off.
- Churn: free users churn more often than premium users (survival 0.85 < 0.93).
- Incremental: rerunning the incremental playlist-run models (they rebuild the last session
  days) leaves fct_playlist_runs identical.

With 30,000 sessions (seed 11) the numbers rest on about 2,000 users and 26,000 playlist
runs: per-step standard errors are about 0.01, per-week ones 0.01-0.03. Measured on the
2-core machine: generate about 7 s, dbt build about 30 s, the whole test under 60 s.
"""

from __future__ import annotations

import math
import time

import pytest

from python_jobs import db, dbt_cli, generate, truth

SESSIONS = 30_000
SEED = 11
WEEKS = range(1, 9)
MIN_USERS = 200  # per tier and week: keeps 4 standard errors under about 0.14
SURVIVAL_TOLERANCE = 0.03  # geometric fit of weekly survival (standard error about 0.006)
STEPS = range(1, 10)
MARTS = ("fct_retention_cohorts", "fct_user_churn", "fct_playlist_funnel", "fct_playlist_dropoff")

pytestmark = pytest.mark.slow


def _planted_continuation(step: int, playlist_type: str, tier: str) -> float:
    base = (truth.PLAYLIST_DROPOFF_CONTINUE if step in truth.PLAYLIST_DROPOFF_STEPS
            else truth.PLAYLIST_CONTINUE)
    return (base + truth.PLAYLIST_TYPE_CONTINUE_SHIFT[playlist_type]
            + truth.PLAYLIST_PREMIUM_CONTINUE_SHIFT * (tier == "premium"))


def _retention_failures(conn: db.Connection) -> list[str]:
    weekly = db.read_sql(conn, """
        select cohort_start_date, segment_value as tier, period_number as week,
               cohort_user_count as users, active_user_count as active
        from marts.fct_retention_cohorts
        where cohort_grain = 'week' and period_unit = 'week' and segment_type = 'tier'""")
    failures = []
    week0 = weekly[weekly["week"] == 0]
    if week0.empty or (week0["active"] != week0["users"]).any():
        failures.append("week 0 retention is not 1 in every cohort")
    pooled = weekly.groupby(["tier", "week"])[["users", "active"]].sum()
    for tier, survival in truth.WEEKLY_SURVIVAL.items():
        for k in WEEKS:
            users, active = pooled.loc[(tier, k)]
            expected = survival ** k
            se = math.sqrt(expected * (1 - expected) / users)
            rate = active / users
            if users < MIN_USERS or abs(rate - expected) > 4 * se:
                failures.append(f"{tier} week {k}: {rate:.3f} on {users} users, planted "
                                f"{expected:.3f} (4 se = {4 * se:.3f})")
        cells = weekly[weekly["tier"] == tier].set_index(["cohort_start_date", "week"])["active"]
        previous = cells.rename(lambda w: w + 1, level="week")
        common = cells.index.intersection(previous.index)
        fitted = cells[common].sum() / previous[common].sum()
        if abs(fitted - survival) > SURVIVAL_TOLERANCE:
            failures.append(f"{tier} fitted weekly survival {fitted:.3f}, planted {survival}")
    return failures


def _funnel_failures(conn: db.Connection) -> list[str]:
    steps = db.read_sql(conn, """
        select segment_type, segment_value, from_track_ordinal as k, at_risk_run_count,
               closed_run_count, continuation_rate, is_largest_drop_off_step,
               largest_drop_off_band
        from marts.fct_playlist_dropoff""")
    failures = []
    everyone = steps[steps["segment_type"] == "all"].set_index("k")
    largest = everyone.index[everyone["is_largest_drop_off_step"]].tolist()
    if largest not in ([3], [4]):
        failures.append(f"largest drop-off step of all runs is from track {largest}, not 3/4")
    if set(everyone["largest_drop_off_band"]) != {"03-05"}:
        failures.append(f"largest drop-off band {set(everyone['largest_drop_off_band'])}")
    if everyone["closed_run_count"].sum() == 0:
        failures.append("no run finished or was cut at the cap: censoring is untested")
    cells = steps[steps["segment_type"] == "playlist_type_tier"]
    for playlist_type in truth.PLAYLIST_TYPE_CONTINUE_SHIFT:
        for tier in truth.WEEKLY_SURVIVAL:
            cell = cells[cells["segment_value"] == f"{playlist_type} | {tier}"].set_index("k")
            for k in STEPS:
                expected = _planted_continuation(k, playlist_type, tier)
                n = cell.loc[k, "at_risk_run_count"]
                rate = cell.loc[k, "continuation_rate"]
                tolerance = max(4 * math.sqrt(expected * (1 - expected) / n), 0.01)
                if abs(rate - expected) > tolerance:
                    failures.append(f"{playlist_type} | {tier} step {k}->{k + 1}: {rate:.3f} "
                                    f"on {n} runs, planted {expected:.2f} (+-{tolerance:.3f})")
    return failures


def _churn_failures(conn: db.Connection) -> list[str]:
    churn = db.read_sql(conn, """
        select tier, avg(case when is_churned then 1.0 else 0.0 end) as churned_share,
               min(case when is_churned then days_since_last_play end) as min_churned_gap
        from marts.fct_user_churn where churn_status != 'never_active' group by tier""")
    shares = dict(zip(churn["tier"], churn["churned_share"], strict=True))
    failures = []
    if not shares["free"] > shares["premium"]:
        failures.append(f"churned shares {shares}: free should churn more than premium")
    if (churn["min_churned_gap"] < 14).any():
        failures.append("a churned user played within the 14-day inactivity window")
    return failures


def test_planted_retention_and_funnel_are_recovered(fresh_database, tmp_path):
    database = fresh_database("retention_funnels")
    started = time.monotonic()
    assert generate.main(["--sessions", str(SESSIONS), "--seed", str(SEED),
                          "--database", database, "--log-level", "WARNING"]) == 0
    generated = time.monotonic()
    dbt_cli.run(database, tmp_path, "build", "--select", *[f"+{m}" for m in MARTS])
    built = time.monotonic()
    print(f"generate {generated - started:.1f} s, dbt build {built - generated:.1f} s")
    with db.connect(database) as conn:
        failures = _retention_failures(conn) + _funnel_failures(conn) + _churn_failures(conn)
        db.execute(conn, "create table public.runs_full as select * from marts.fct_playlist_runs")
    # An incremental run with a lookback rebuilds the last three session days of the runs
    # from the same plays: the table must come out identical.
    dbt_cli.run(database, tmp_path, "run", "--select", "fct_playlist_runs",
                "--vars", "{incremental_lookback_days: 3}")
    print(f"incremental rerun {time.monotonic() - built:.1f} s")
    with db.connect(database) as conn:
        differing = db.read_sql(conn, """
            select count(*) from (
                (select * from marts.fct_playlist_runs except all select * from public.runs_full)
                union all
                (select * from public.runs_full except all select * from marts.fct_playlist_runs)
            ) as differences""").iloc[0, 0]
    if differing:
        failures.append(f"incremental rerun changed {differing} playlist-run rows")
    assert not failures, "\n".join(failures)
