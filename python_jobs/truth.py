"""The synthetic generator's planted ground truth, as plain constants.

The generator (python_jobs.generate) draws its data from these numbers, writes them to
raw.generator_truth, and tests and analyses import them to check that the pipeline recovers
what was planted. docs/ground_truth.md explains every one in words.
"""

from __future__ import annotations

# --- Calendar -------------------------------------------------------------------------------
DEFAULT_START_DATE = "2026-01-05"  # a Monday
DEFAULT_DAYS = 84
DEFAULT_SESSIONS = 20_000
DEFAULT_SEED = 42
SIGNUP_DAYS_BEFORE_START = 28  # signup_at ~ U[start - 28 d, end - 7 d]
SIGNUP_DAYS_BEFORE_END = 7

# --- Catalogue ------------------------------------------------------------------------------
# Genre means of the Beta-distributed audio features (danceability, energy, valence,
# acousticness, instrumentalness, speechiness, liveness), then tempo (bpm) and loudness (dB).
GENRES: dict[str, dict[str, float]] = {
    "electronic": dict(dance=0.75, energy=0.85, valence=0.50, acoustic=0.05, instr=0.60,
                       speech=0.06, live=0.15, tempo=126, loud=-5.5),
    "house": dict(dance=0.80, energy=0.80, valence=0.60, acoustic=0.05, instr=0.50,
                  speech=0.06, live=0.12, tempo=124, loud=-6.0),
    "techno": dict(dance=0.72, energy=0.88, valence=0.35, acoustic=0.03, instr=0.80,
                   speech=0.05, live=0.12, tempo=132, loud=-6.5),
    "pop": dict(dance=0.68, energy=0.68, valence=0.58, acoustic=0.20, instr=0.02,
                speech=0.07, live=0.16, tempo=118, loud=-5.8),
    "dance pop": dict(dance=0.74, energy=0.74, valence=0.65, acoustic=0.12, instr=0.02,
                      speech=0.07, live=0.15, tempo=122, loud=-5.2),
    "hip hop": dict(dance=0.76, energy=0.65, valence=0.50, acoustic=0.15, instr=0.02,
                    speech=0.28, live=0.18, tempo=98, loud=-6.2),
    "rap": dict(dance=0.74, energy=0.68, valence=0.45, acoustic=0.12, instr=0.01,
                speech=0.32, live=0.20, tempo=104, loud=-5.9),
    "r&b": dict(dance=0.66, energy=0.55, valence=0.48, acoustic=0.28, instr=0.03,
                speech=0.10, live=0.14, tempo=100, loud=-7.0),
    "rock": dict(dance=0.50, energy=0.78, valence=0.48, acoustic=0.10, instr=0.08,
                 speech=0.05, live=0.22, tempo=124, loud=-6.0),
    "indie": dict(dance=0.55, energy=0.60, valence=0.42, acoustic=0.30, instr=0.12,
                  speech=0.05, live=0.15, tempo=120, loud=-7.8),
    "metal": dict(dance=0.40, energy=0.93, valence=0.30, acoustic=0.02, instr=0.15,
                  speech=0.08, live=0.22, tempo=134, loud=-4.8),
    "punk": dict(dance=0.45, energy=0.90, valence=0.52, acoustic=0.03, instr=0.04,
                 speech=0.07, live=0.25, tempo=150, loud=-5.0),
    "folk": dict(dance=0.50, energy=0.38, valence=0.45, acoustic=0.75, instr=0.10,
                 speech=0.04, live=0.14, tempo=112, loud=-10.5),
    "country": dict(dance=0.58, energy=0.62, valence=0.58, acoustic=0.35, instr=0.02,
                    speech=0.04, live=0.17, tempo=120, loud=-6.8),
    "jazz": dict(dance=0.55, energy=0.38, valence=0.50, acoustic=0.70, instr=0.55,
                 speech=0.05, live=0.20, tempo=115, loud=-11.5),
    "blues": dict(dance=0.52, energy=0.50, valence=0.48, acoustic=0.50, instr=0.15,
                  speech=0.05, live=0.25, tempo=110, loud=-9.0),
    "classical": dict(dance=0.28, energy=0.15, valence=0.25, acoustic=0.92, instr=0.88,
                      speech=0.04, live=0.12, tempo=100, loud=-20.0),
    "ambient": dict(dance=0.30, energy=0.20, valence=0.18, acoustic=0.60, instr=0.85,
                    speech=0.04, live=0.10, tempo=95, loud=-17.0),
    "latin": dict(dance=0.78, energy=0.74, valence=0.72, acoustic=0.20, instr=0.02,
                  speech=0.08, live=0.17, tempo=110, loud=-5.5),
    "soul": dict(dance=0.60, energy=0.52, valence=0.62, acoustic=0.40, instr=0.05,
                 speech=0.06, live=0.18, tempo=106, loud=-8.5),
}
GENRE_NAMES: tuple[str, ...] = tuple(GENRES)
AUDIO_FEATURE_CONCENTRATION = 12.0  # Beta(m*c, (1-m)*c) around each genre mean
N_ARTISTS = 2_000
ALBUM_TRACKS_MIN, ALBUM_TRACKS_MAX = 8, 14  # one album per artist: ~22,000 tracks
ARTIST_GENRE_COUNT_WEIGHTS = (0.5, 0.3, 0.2)  # artists with 1, 2, 3 genres
POPULARITY_ZIPF_EXPONENT = 1.0  # play weight of the artist ranked r is r^-1 (times noise)
TRACK_DURATION_MEDIAN_MS = 210_000
TRACK_DURATION_MIN_MS, TRACK_DURATION_MAX_MS = 90_000, 600_000
N_PLAYLISTS = 400
PLAYLIST_TYPE_SHARES = {"editorial": 0.30, "algorithmic": 0.30, "user": 0.40}
PLAYLIST_TRACKS_MIN, PLAYLIST_TRACKS_MAX = 10, 60
PLAYLIST_MAIN_GENRE_SHARE = 0.85  # the rest of a playlist's tracks come from anywhere

# --- Users ----------------------------------------------------------------------------------
PREMIUM_SHARE = 0.35
COUNTRY_WEIGHTS = {"US": 0.30, "GB": 0.10, "DE": 0.10, "BR": 0.10, "MX": 0.08, "FR": 0.08,
                   "SE": 0.06, "IN": 0.08, "JP": 0.05, "CA": 0.05}
BIRTH_YEAR_MIN, BIRTH_YEAR_MAX = 1950, 2010
BIRTH_YEAR_MISSING_SHARE = 0.05
SKIP_PROPENSITY_SD = 0.5  # u ~ N(0, 0.5), added to the skip logit
SESSION_LENGTH_EFFECT_SD = 0.3  # s_u ~ N(0, 0.3), added to log(mu)
# preferred energy ~ Beta(m*c, (1-m)*c), m = energy mean of the favourite genre, c = 8
PREFERRED_ENERGY_CONCENTRATION = 8.0
# Relative weight of a genre as an artist's primary genre and as a favourite genre (else 1).
GENRE_WEIGHTS = {"pop": 2.0, "hip hop": 2.0, "rock": 2.0, "rap": 1.5, "dance pop": 1.5,
                 "electronic": 1.5, "indie": 1.2, "latin": 1.2}
WEEKLY_SESSION_RATE_MEAN = {"free": 2.5, "premium": 4.0}
WEEKLY_SESSION_RATE_SHAPE = 4.0  # Gamma(shape 4, scale mean/4)
PRIMARY_DEVICE_WEIGHTS = {"mobile": 0.60, "desktop": 0.20, "web": 0.08,
                          "smart_speaker": 0.07, "tv": 0.05}
PRIMARY_DEVICE_SHARE = 0.70  # share of a user's sessions on the primary device; else uniform

# --- 1. Retention ---------------------------------------------------------------------------
WEEKLY_SURVIVAL = {"free": 0.85, "premium": 0.93}  # P(alive in week k | alive in week k-1)
SESSION_GAP_MINUTES_MIN = 35  # consecutive sessions of a user start > 35 min after the last end

# Session start: hour-of-day weights (UTC, 0..23) and day-of-week weights (Mon..Sun).
HOUR_WEIGHTS = (1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.4, 3.2, 2.8, 2.2, 2.0,
                2.3, 2.2, 2.0, 2.1, 2.4, 2.9, 3.4, 3.8, 3.9, 3.6, 2.8, 1.8)
WEEKDAY_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.1, 1.4, 1.4)

# --- 2. Session length ----------------------------------------------------------------------
# target tracks n = 1 + Poisson(mu), log(mu) = intercept + sum of the effects below + s_u
SESSION_LENGTH = {
    "intercept": 1.4,
    "premium": 0.30,
    "hour_18_23": 0.25,
    "hour_0_5": -0.20,
    "device_smart_speaker": 0.35,
    "device_desktop": 0.15,
    "first_context_playlist": 0.25,
    "first_context_album": 0.15,
}
SESSION_TARGET_TRACKS_MAX = 40  # n is capped at 40 ...
SESSION_TRACKS_MAX = 50  # ... and a session never has more than 50 plays (about 3 hours)

# --- 3. Context runs ------------------------------------------------------------------------
CONTEXT_SHARES = {"playlist": 0.40, "album": 0.20, "radio": 0.12, "artist": 0.10,
                  "collection": 0.10, "search": 0.08}
SHUFFLE_PROB = {"free": 0.6, "premium": 0.3}  # playlist runs only; other runs never shuffle
PLAYLIST_CONTINUE = 0.92  # P(track k+1 | track k) within a playlist run
PLAYLIST_DROPOFF_STEPS = (3, 4)  # from track 3 to 4 and from 4 to 5 ...
PLAYLIST_DROPOFF_CONTINUE = 0.70  # ... the listener continues with only 0.70
PLAYLIST_TYPE_CONTINUE_SHIFT = {"editorial": 0.02, "algorithmic": 0.04, "user": -0.02}
PLAYLIST_PREMIUM_CONTINUE_SHIFT = 0.02
ALBUM_CONTINUE = 0.85
OTHER_CONTINUE = {"radio": 0.80, "artist": 0.80, "collection": 0.80, "search": 0.30}
FAVOURITE_GENRE_SHARE = 0.60  # radio/artist/collection/search (and album, playlist) picks
RUN_CHANGE_GAP_S = (5, 60)  # extra seconds before the first play of a new run
PLAY_GAP_S = (0, 3)  # seconds between the end of a play and the next start

# --- 4. Skips -------------------------------------------------------------------------------
# logit P(skip) = intercept + coefficients * terms + u (+ experiment shift)
SKIP = {
    "intercept": -1.2,
    "abs_energy_minus_preferred": 1.5,
    "danceability_minus_0_5": -0.8,
    "valence_minus_0_5": -0.5,
    "favourite_genre": -0.6,
    "position_in_session_minus_1_max_20": 0.04,
    "hour_0_5": 0.4,
    "radio": 0.3,
    "album": -0.4,
    "search": -0.6,
    "shuffle": 0.25,
    "premium": -0.25,
}
SKIP_MS_PLAYED = (1_000, 29_000)  # skipped: ms_played ~ U(1 s, 29 s)
SKIP_BACKBTN_SHARE = 0.15  # skipped: reason_end backbtn 15%, fwdbtn 85%
LATE_SKIP_SHARE = 0.06  # not skipped: fwdbtn after 50-95% of the track (> 30 s)
LATE_SKIP_FRACTION = (0.50, 0.95)
LAST_PLAY_END_SHARE = 0.20  # last play of a session, not skipped: endplay/logout, partial
LAST_PLAY_LOGOUT_SHARE = 0.25  # of those: logout, else endplay
SKIP_THRESHOLD_MS = 30_000  # a skip = ms_played < 30 s
FIRST_PLAY_REASON_START = {"appload": 0.4, "clickrow": 0.4, "playbtn": 0.2}
RUN_START_REASON_START = {"clickrow": 0.7, "playbtn": 0.3}

# --- 6. Experiments -------------------------------------------------------------------------
EXPERIMENTS: dict[str, dict] = {
    "exp_skip_reco": {
        "name": "Smarter next-track recommendation",
        "hypothesis": "A better next-track model lowers the skip rate.",
        "salt": "exp_skip_reco_v1",
        "traffic_share": 0.5,
        "window_days": (28, 56),
        "variants": {"control": 0.5, "treatment": 0.5},
        "skip_logit_shift": {"treatment": -0.30},
        "session_log_mu_shift": {},
    },
    "exp_autoplay": {
        "name": "Autoplay after the context ends",
        "hypothesis": "Autoplay makes sessions longer (b more than a).",
        "salt": "exp_autoplay_v1",
        "traffic_share": 0.6,
        "window_days": (35, 63),
        "variants": {"control": 0.34, "autoplay_a": 0.33, "autoplay_b": 0.33},
        "skip_logit_shift": {},
        "session_log_mu_shift": {"autoplay_a": 0.10, "autoplay_b": 0.20},
    },
    "exp_aa_check": {
        "name": "A/A check of the assignment and analysis",
        "hypothesis": "No difference: both arms get the same experience.",
        "salt": "exp_aa_check_v1",
        "traffic_share": 1.0,
        "window_days": (14, 42),
        "variants": {"control": 0.5, "treatment": 0.5},
        "skip_logit_shift": {},
        "session_log_mu_shift": {},
    },
}

# --- 7. Data-quality plants (extra rows on top of the clean plays) --------------------------
QUALITY_RATES = {
    "duplicate": 0.002,  # exact copy, same event_id
    "negative_ms_played": 0.0005,
    "ms_played_over_24h": 0.0005,
    "unknown_track_id": 0.0002,
    "unknown_user_id": 0.0002,
    "started_at_2099": 0.0002,
}
UNKNOWN_USER_ID_BASE = 9_000_000_000  # unknown user ids are above this
UNKNOWN_TRACK_PREFIX = "trk_unknown_"


def parameters() -> list[tuple[str, float, str]]:
    """Every planted number as (parameter, value, description): raw.generator_truth's rows."""
    rows: list[tuple[str, float, str]] = []
    for tier, p in WEEKLY_SURVIVAL.items():
        rows.append((f"retention.weekly_survival.{tier}", p,
                     f"P(a {tier} user alive in week k-1 is alive in week k); "
                     f"share of a cohort active in week k = {p}^k"))
    for tier, m in WEEKLY_SESSION_RATE_MEAN.items():
        rows.append((f"retention.weekly_session_rate_mean.{tier}", m,
                     "mean of the Gamma weekly session rate r; sessions per alive week = "
                     "1 + Poisson(max(r - 1, 0))"))
    rows.append(("retention.session_gap_minutes_min", SESSION_GAP_MINUTES_MIN,
                 "a user's next session starts more than this many minutes after the last "
                 "play of the previous one ends"))
    for term, b in SESSION_LENGTH.items():
        rows.append((f"session_length.{term}", b,
                     "log(mu) term; target tracks n = 1 + Poisson(mu)"))
    rows.append(("session_length.user_effect_sd", SESSION_LENGTH_EFFECT_SD,
                 "sd of the per-user random effect s_u in log(mu)"))
    rows.append(("session_length.target_tracks_max", SESSION_TARGET_TRACKS_MAX,
                 "cap on the target n"))
    rows.append(("session_length.tracks_max", SESSION_TRACKS_MAX,
                 "hard cap on plays per session (cuts the last run)"))
    for ctx, s in CONTEXT_SHARES.items():
        rows.append((f"context.share.{ctx}", s, "probability that a run is in this context"))
    for tier, s in SHUFFLE_PROB.items():
        rows.append((f"context.shuffle_prob.{tier}", s, "P(shuffle on) for a playlist run"))
    rows.append(("funnel.playlist_continue", PLAYLIST_CONTINUE,
                 "P(track k+1 | track k) in a playlist run, base"))
    rows.append(("funnel.playlist_dropoff_continue", PLAYLIST_DROPOFF_CONTINUE,
                 "base P(continue) from track 3 to 4 and from track 4 to 5 (the drop-off)"))
    for k in PLAYLIST_DROPOFF_STEPS:
        rows.append((f"funnel.dropoff_step.{k}", k, f"drop-off applies from track {k} to "
                     f"{k + 1}"))
    for ptype, d in PLAYLIST_TYPE_CONTINUE_SHIFT.items():
        rows.append((f"funnel.continue_shift.{ptype}", d,
                     f"added to P(continue) in {ptype} playlists"))
    rows.append(("funnel.continue_shift.premium", PLAYLIST_PREMIUM_CONTINUE_SHIFT,
                 "added to P(continue) in playlist runs of premium users"))
    rows.append(("funnel.album_continue", ALBUM_CONTINUE, "P(continue) in an album run"))
    for ctx, c in OTHER_CONTINUE.items():
        rows.append((f"funnel.{ctx}_continue", c, f"P(continue) in a {ctx} run"))
    for term, b in SKIP.items():
        rows.append((f"skip.{term}", b, "skip logit term"))
    rows.append(("skip.user_effect_sd", SKIP_PROPENSITY_SD,
                 "sd of the per-user skip propensity u in the skip logit"))
    rows.append(("skip.threshold_ms", SKIP_THRESHOLD_MS, "a skip is a play under 30 s"))
    rows.append(("skip.late_skip_share", LATE_SKIP_SHARE,
                 "share of non-skipped plays ended by fwdbtn after 50-95% of the track"))
    rows.append(("skip.last_play_end_share", LAST_PLAY_END_SHARE,
                 "share of non-skipped last plays ended by endplay/logout (partial, > 30 s)"))
    for exp_id, exp in EXPERIMENTS.items():
        rows.append((f"experiment.{exp_id}.traffic_share", exp["traffic_share"],
                     "share of users enrolled (hash bucket < share * 10000)"))
        lo, hi = exp["window_days"]
        rows.append((f"experiment.{exp_id}.window_start_day", lo,
                     "window start, days after the data start"))
        rows.append((f"experiment.{exp_id}.window_end_day", hi,
                     "window end (exclusive), days after the data start"))
        for variant, w in exp["variants"].items():
            rows.append((f"experiment.{exp_id}.weight.{variant}", w, "variant weight"))
        for variant, d in exp["skip_logit_shift"].items():
            rows.append((f"experiment.{exp_id}.skip_logit_shift.{variant}", d,
                         "added to the skip logit of in-window plays"))
        for variant, d in exp["session_log_mu_shift"].items():
            rows.append((f"experiment.{exp_id}.session_log_mu_shift.{variant}", d,
                         "added to log(mu) of in-window sessions"))
    for kind, rate in QUALITY_RATES.items():
        rows.append((f"quality.rate.{kind}", rate, "probability per clean play of an extra "
                     "bad row of this kind"))
    return rows


# --- Oracle truth: what the generator knew about each play and session ----------------------
# Not parameters but per-row truth (docs/ground_truth.md, "Oracle truth"), written chunk by
# chunk with COPY beside raw.listening_events so that python -m python_jobs.train can score
# the best possible predictions on the same held-out rows as its models.
PLAY_TRUTH_TABLE = "raw.generator_play_truth"
SESSION_TRUTH_TABLE = "raw.generator_session_truth"
# Replays of each emitted session (same user, start, device, first context; a random stream
# of their own) averaged into its expected duration: the Monte Carlo error of the mean is
# stored beside it so that the oracle's MSE can be corrected for it.
ORACLE_DURATION_REPLAYS = 8
ORACLE_STREAM = 2_000_000  # rng stream [seed, chunk, ORACLE_STREAM]: the data's stream is untouched
PLAY_TRUTH_COLUMNS = {
    "event_id": "text not null",  # unique by construction; no index: COPY stays cheap
    "skip_logit": "double precision not null",
    "skip_probability": "double precision not null",
}
SESSION_TRUTH_COLUMNS = {
    "session_hint": "text primary key",
    "user_id": "bigint not null",
    "started_at": "timestamp not null",
    "log_mu": "double precision not null",
    "expected_target_tracks": "double precision not null",
    "target_tracks": "bigint not null",
    "expected_duration_seconds": "double precision not null",
    "expected_duration_variance": "double precision not null",
    "duration_replays": "bigint not null",
}


def oracle_ddl() -> list[str]:
    """create-table statements of the two oracle truth tables (no index beyond the keys:
    train joins them once per run)."""
    out = []
    for table, columns in ((PLAY_TRUTH_TABLE, PLAY_TRUTH_COLUMNS),
                           (SESSION_TRUTH_TABLE, SESSION_TRUTH_COLUMNS)):
        cols = ",\n    ".join(f"{name} {kind}" for name, kind in columns.items())
        out.append(f"create table if not exists {table} (\n    {cols}\n)")
    return out
