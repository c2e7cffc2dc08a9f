"""The synthetic generator: determinism, exact counts, contract, planted truth, plants."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from python_jobs import assignment, contract, db, generate, truth

START = pd.Timestamp(truth.DEFAULT_START_DATE)
END = START + pd.Timedelta(days=truth.DEFAULT_DAYS)


def _snapshot(database: str) -> dict[str, pd.DataFrame]:
    """Every raw table without the audit columns, in a stable order."""
    out = {}
    with db.connect(database) as conn:
        for name, table in contract.TABLES.items():
            cols = ", ".join(table.column_names)
            keys = ", ".join(table.key)
            out[name] = db.read_sql(conn, f"select {cols} from raw.{name} order by {keys}, "
                                          f"{cols}")
        out["generator_truth"] = db.read_sql(
            conn, "select parameter, value from raw.generator_truth order by parameter")
    return out


def _digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy()
                          .tobytes()).hexdigest()


def _truth(snapshot: dict[str, pd.DataFrame]) -> dict[str, float]:
    t = snapshot["generator_truth"]
    return dict(zip(t["parameter"], t["value"], strict=True))


def test_same_seed_same_rows_rerun_replaces_other_seed_differs(fresh_database):
    database = fresh_database("gen_determinism")
    args = ["--sessions", "3000", "--seed", "7", "--database", database]
    assert generate.main(args) == 0
    first = _snapshot(database)
    assert generate.main(args) == 0  # rerun into the same database: replaced, not appended
    second = _snapshot(database)
    for name in contract.TABLES:
        assert len(first[name]) > 0, f"raw.{name} is empty"
        assert len(second[name]) == len(first[name]), name
        assert _digest(first[name]) == _digest(second[name]), f"raw.{name} differs on rerun"
    sessions = first["listening_events"]["session_hint"].dropna()
    assert sessions.nunique() == 3000
    with db.connect(database) as conn:
        rejects = db.read_sql(conn, "select count(*) as n from raw.load_rejects")
    assert rejects["n"].iloc[0] == 0

    assert generate.main(["--sessions", "3000", "--seed", "8", "--database", database]) == 0
    other = _snapshot(database)
    assert other["listening_events"]["session_hint"].nunique() == 3000
    assert _digest(other["listening_events"]) != _digest(first["listening_events"])


def test_planted_truth_and_structure(fresh_database):
    database = fresh_database("gen_truth")
    assert generate.main(["--sessions", "20000", "--seed", "42", "--database", database]) == 0
    snap = _snapshot(database)
    found = _truth(snap)

    # The truth table holds every planted parameter with truth.py's value.
    for parameter, value, _ in truth.parameters():
        assert found[parameter] == value, parameter

    events = snap["listening_events"]
    users = snap["users"]
    is_plant = events["event_id"].str.contains("-q-")
    duplicated = events.duplicated("event_id", keep="first")
    clean = events[~is_plant & ~duplicated].copy()

    # Counts in the truth table match the data.
    assert found["count.sessions"] == 20000 == clean["session_hint"].nunique()
    assert found["count.plays"] == len(clean)
    assert found["count.users"] == len(users)
    for table in contract.TABLES:
        assert found[f"rows.{table}"] == len(snap[table]), table

    # Quality plants: exact counts, and each plant really is bad in its way.
    assert found["quality.count.duplicate"] == duplicated.sum() > 0
    kinds = events.loc[is_plant, "event_id"].str.split("-q-").str[1].value_counts()
    for kind in truth.QUALITY_RATES:
        if kind != "duplicate":
            assert found[f"quality.count.{kind}"] == kinds.get(kind, 0), kind
    plants = events[is_plant]
    kind = plants["event_id"].str.split("-q-").str[1]
    assert (plants.loc[kind == "negative_ms_played", "ms_played"] < 0).all()
    assert (plants.loc[kind == "ms_played_over_24h", "ms_played"] > 86_400_000).all()
    assert (~plants.loc[kind == "unknown_track_id", "track_id"]
            .isin(snap["tracks"]["track_id"])).all()
    assert (~plants.loc[kind == "unknown_user_id", "user_id"].isin(users["user_id"])).all()
    assert (pd.to_datetime(plants.loc[kind == "started_at_2099", "started_at"]).dt.year
            == 2099).all()
    assert clean["user_id"].isin(users["user_id"]).all()
    assert clean["track_id"].isin(snap["tracks"]["track_id"]).all()

    # Sessions: inside the window, no overlap, > 35 min apart; plays < 30 min apart inside.
    clean["started_at"] = pd.to_datetime(clean["started_at"])
    assert clean["started_at"].min() >= START and clean["started_at"].max() < END + pd.Timedelta(
        hours=4)
    clean = clean.sort_values(["user_id", "started_at", "event_id"])
    clean["ended_at"] = clean["started_at"] + pd.to_timedelta(clean["ms_played"], unit="ms")
    sessions = clean.groupby("session_hint").agg(
        user_id=("user_id", "first"), start=("started_at", "min"), end=("ended_at", "max"),
        plays=("event_id", "size")).sort_values(["user_id", "start"])
    assert sessions["start"].min() >= START and sessions["start"].max() < END
    previous_end = sessions.groupby("user_id")["end"].shift()
    between = (sessions["start"] - previous_end).dt.total_seconds().dropna()
    assert between.min() > 35 * 60
    previous_start = clean.groupby("user_id")["started_at"].shift()
    same_session = clean["session_hint"] == clean.groupby("user_id")["session_hint"].shift()
    within = (clean["started_at"] - previous_start).dt.total_seconds()
    assert within[same_session].max() < 30 * 60
    assert within[~same_session & previous_start.notna()].min() > 35 * 60
    assert sessions["plays"].max() <= truth.SESSION_TRACKS_MAX

    # Planted effects show in the raw plays.
    clean["skipped"] = clean["ms_played"] < truth.SKIP_THRESHOLD_MS
    session_hour = clean.groupby("session_hint")["started_at"].transform("min").dt.hour
    night = clean.loc[session_hour < 6, "skipped"].mean()
    day = clean.loc[(session_hour >= 9) & (session_hour < 18), "skipped"].mean()
    assert night > day + 0.02
    by_context = clean.groupby("context_type")["skipped"].mean()
    # Marginal rates are confounded (position, genre), but these gaps are wide in the logit.
    assert by_context["search"] < by_context["radio"] - 0.05
    assert by_context["album"] < by_context["radio"] - 0.05
    tiers = users.set_index("user_id")["tier"]
    sessions["tier"] = sessions["user_id"].map(tiers)
    mean_plays = sessions.groupby("tier")["plays"].mean()
    assert mean_plays["premium"] > mean_plays["free"]

    # Retention: free users who signed up early enough to observe week 4.
    users["signup_at"] = pd.to_datetime(users["signup_at"])
    cohort = users[(users["signup_at"] >= START) & (users["signup_at"] <= END
                                                    - pd.Timedelta(days=35))]
    sessions = sessions.reset_index().merge(users[["user_id", "signup_at"]], on="user_id")
    sessions["week"] = (sessions["start"] - sessions["signup_at"]) // pd.Timedelta(days=7)
    for tier, tolerance in (("free", 0.08), ("premium", 0.10)):
        ids = cohort.loc[cohort["tier"] == tier, "user_id"]
        assert len(ids) > 150
        mine = sessions[sessions["user_id"].isin(ids)]
        week0 = mine.loc[mine["week"] == 0, "user_id"].nunique() / len(ids)
        week4 = mine.loc[mine["week"] == 4, "user_id"].nunique() / len(ids)
        assert week0 == 1.0
        assert abs(week4 - truth.WEEKLY_SURVIVAL[tier] ** 4) < tolerance, (tier, week4)

    # Playlist funnel: the drop-off from track 3 to 4 is visible (runs start at a click).
    ordered = clean.assign(pos=clean["event_id"].str.split("-").str[-1].astype(int))
    ordered = ordered.sort_values(["session_hint", "pos"])
    run = ordered["reason_start"].isin(["appload", "clickrow", "playbtn"]).cumsum()
    ordered["k"] = ordered.groupby(run).cumcount() + 1
    reached = ordered[ordered["context_type"] == "playlist"].groupby("k").size()
    assert reached[4] / reached[3] < reached[3] / reached[2] - 0.15

    # Assignments: the generator's rows agree with assignment.py; one per user and experiment.
    rows = snap["experiment_assignments"]
    assert not rows.duplicated(["experiment_id", "user_id"]).any()
    for exp_id, spec in truth.EXPERIMENTS.items():
        mine = rows[rows["experiment_id"] == exp_id]
        assert len(mine) > 0
        for row in mine.itertuples():
            assert row.variant == assignment.assign_one(
                spec["salt"], spec["traffic_share"], spec["variants"], row.user_id)
        lo, hi = spec["window_days"]
        assigned = pd.to_datetime(mine["assigned_at"])
        assert assigned.min() >= START + pd.Timedelta(days=lo)
        assert assigned.max() < START + pd.Timedelta(days=hi)
    control = found["experiment.exp_skip_reco.potential_skip_rate.control"]
    treated = found["experiment.exp_skip_reco.potential_skip_rate.treatment"]
    assert 0.1 < treated < control < 0.6


def test_assignment_is_deterministic_and_honours_shares():
    salt = "unit_test_salt"
    user_ids = np.arange(1, 20_001)
    variants = {"control": 0.5, "a": 0.3, "b": 0.2}
    enrolled, index = assignment.assign(salt, 0.6, variants, user_ids)
    again, index_again = assignment.assign(salt, 0.6, variants, user_ids)
    assert (enrolled == again).all() and (index == index_again).all()
    assert abs(enrolled.mean() - 0.6) < 0.015
    shares = np.bincount(index[enrolled], minlength=3) / enrolled.sum()
    assert np.allclose(shares, [0.5, 0.3, 0.2], atol=0.02)
    assert (index[~enrolled] == -1).all()

    # The documented formula, recomputed independently for a few users.
    names = list(variants)
    for user_id in (1, 17, 4242):
        digest = hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()
        in_traffic = int(digest, 16) % 10_000 < 6_000
        assert enrolled[user_id - 1] == in_traffic
        expected = assignment.assign_one(salt, 0.6, variants, user_id)
        got = names[index[user_id - 1]] if in_traffic else None
        assert got == expected
    # Traffic 1.0 enrols everyone; another salt gives another split.
    assert assignment.assign(salt, 1.0, variants, user_ids)[0].all()
    other, _ = assignment.assign("another_salt", 0.6, variants, user_ids)
    assert (other != enrolled).any()


def test_oracle_truth_is_stored_per_play_and_session(fresh_database):
    """raw.generator_play_truth / generator_session_truth: one row per clean play and per
    session, keyed to the data, and consistent with it (docs/ground_truth.md, Oracle truth)."""
    from scipy.stats import poisson

    database = fresh_database("gen_oracle")
    assert generate.main(["--sessions", "3000", "--seed", "11", "--database", database,
                          "--log-level", "WARNING"]) == 0
    with db.connect(database) as conn:
        plays = db.read_sql(conn, f"""
            select e.event_id, e.ms_played, e.session_hint, e.user_id, t.skip_logit,
                   t.skip_probability
            from (select distinct event_id, ms_played, session_hint, user_id
                  from raw.listening_events where event_id not like '%%-q-%%') as e
            left join {truth.PLAY_TRUTH_TABLE} as t on t.event_id = e.event_id""")
        truth_rows = db.read_sql(conn, f"select count(*) as n from {truth.PLAY_TRUTH_TABLE}")
        sessions = db.read_sql(conn, f"""
            select t.*, d.duration_seconds
            from {truth.SESSION_TRUTH_TABLE} as t
            join (select session_hint, min(started_at) as first_start,
                         extract(epoch from max(started_at + ms_played * interval '1 ms')
                                 - min(started_at)) as duration_seconds
                  from (select distinct event_id, session_hint, started_at, ms_played
                        from raw.listening_events where event_id not like '%%-q-%%') as c
                  group by session_hint) as d
              on d.session_hint = t.session_hint and d.first_start = t.started_at""")
    # every clean play has its truth, and nothing else does
    assert plays["skip_probability"].notna().all()
    assert truth_rows["n"].iloc[0] == len(plays)
    p = plays["skip_probability"].to_numpy(float)
    assert np.allclose(p, 1 / (1 + np.exp(-plays["skip_logit"].to_numpy(float))), atol=1e-12)
    # the truth predicts the data: observed skip rate per decile of true P(skip)
    skipped = (plays["ms_played"] < truth.SKIP_THRESHOLD_MS).to_numpy()
    order = np.argsort(p)
    for idx in np.array_split(order, 5):
        assert abs(skipped[idx].mean() - p[idx].mean()) < 0.03
    # one row per session, matched to the data on user, hint and start
    assert len(sessions) == 3000
    assert (sessions["user_id"].astype(str).radd("s") + "-"
            == sessions["session_hint"].str.rsplit("-", n=1).str[0] + "-").all()
    # the expected target length is exact: E[min(1 + Poisson(mu), 40)] summed directly
    mu = np.exp(sessions["log_mu"].to_numpy(float))
    k = np.arange(0, 400)
    direct = (np.minimum(1 + k, truth.SESSION_TARGET_TRACKS_MAX)[None, :]
              * poisson.pmf(k[None, :], mu[:, None])).sum(axis=1)
    assert np.allclose(sessions["expected_target_tracks"], direct, atol=1e-9)
    # ... and the realised targets and durations average out to their expectations
    se_target = np.sqrt(mu.mean() / len(sessions))
    assert abs(sessions["target_tracks"].mean() - direct.mean()) < 4 * se_target + 0.05
    y = sessions["duration_seconds"].to_numpy(float)
    expected = sessions["expected_duration_seconds"].to_numpy(float)
    assert abs(y.mean() - expected.mean()) < 4 * y.std() / np.sqrt(len(y))
    assert (sessions["duration_replays"] == truth.ORACLE_DURATION_REPLAYS).all()
    assert (sessions["expected_duration_variance"] >= 0).all()
    assert np.corrcoef(y, expected)[0, 1] > 0.2
