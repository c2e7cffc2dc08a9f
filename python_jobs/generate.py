"""Generate a synthetic listening data set with planted ground truth and load it into raw.

    python -m python_jobs.generate --sessions 20000 --seed 42 [--start-date 2026-01-05]
        [--days 84] [--database D]

Every raw table is loaded through load.load with batch id "generator", so a rerun replaces
the previous generated data. The planted parameters (python_jobs.truth) and the realised
counts go to raw.generator_truth. Users are generated in chunks, each with its own random
stream np.random.default_rng([seed, chunk]), and their plays are streamed into COPY chunk by
chunk, so memory stays bounded whatever --sessions is.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from python_jobs import assignment, config, contract, db, load, logs, truth, warehouse

log = logging.getLogger(__name__)

BATCH_ID = "generator"
SOURCE = "python_jobs.generate"
CHUNK_USERS = 2_500
CATALOGUE_STREAM = 1_000_000  # rng stream of the catalogue; user chunks use 0, 1, 2, ...
MS_HOUR = 3_600_000
MS_DAY = 24 * MS_HOUR
MS_WEEK = 7 * MS_DAY
EPOCH = datetime(1970, 1, 1)

CONTEXTS = tuple(truth.CONTEXT_SHARES)  # playlist, album, radio, artist, collection, search
PLAYLIST, ALBUM, RADIO, ARTIST, COLLECTION, SEARCH = range(6)
DEVICES = contract.DEVICES
TIERS = ("free", "premium")
REASON_START = {name: i for i, name in enumerate(contract.REASON_STARTS)}
REASON_END = {name: i for i, name in enumerate(contract.REASON_ENDS)}


def _ms(ts: datetime) -> int:
    return int((ts - EPOCH) / timedelta(milliseconds=1))


def _choice(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    p = np.asarray(list(weights), dtype=np.float64)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class Sampler:
    """Draw items with probability proportional to weight, within a group (vectorised)."""

    order: np.ndarray  # item ids sorted by group
    cum: np.ndarray  # cumulative weights along `order`
    first: np.ndarray  # per group: first and one-past-last position in `order`
    last: np.ndarray
    lo: np.ndarray  # per group: cumulative weight before / after the group
    hi: np.ndarray

    def draw(self, rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
        target = self.lo[groups] + rng.random(len(groups)) * (self.hi[groups] - self.lo[groups])
        pos = np.searchsorted(self.cum, target, side="right")
        pos = np.clip(pos, self.first[groups], self.last[groups] - 1)
        return self.order[pos]

    def has(self, groups: np.ndarray) -> np.ndarray:
        return self.last[groups] > self.first[groups]


def make_sampler(group: np.ndarray, weight: np.ndarray, n_groups: int) -> Sampler:
    order = np.argsort(group, kind="stable")
    cum = np.cumsum(weight[order])
    cum_before = np.concatenate([[0.0], cum])
    counts = np.bincount(group, minlength=n_groups)
    last = np.cumsum(counts)
    first = last - counts
    return Sampler(order, cum, first, last, cum_before[first], cum_before[last])


@dataclass
class Catalogue:
    frames: dict[str, pd.DataFrame]
    track_genre: np.ndarray
    track_energy: np.ndarray
    track_dance: np.ndarray
    track_valence: np.ndarray
    track_duration: np.ndarray
    track_album: np.ndarray
    album_first_track: np.ndarray
    album_size: np.ndarray
    artist_genre: np.ndarray  # primary genre
    playlist_tracks: np.ndarray  # flat, playlist by playlist, in position order
    playlist_offset: np.ndarray
    playlist_size: np.ndarray
    playlist_type: np.ndarray  # index into PLAYLIST_TYPES
    playlist_owner_draw: np.ndarray  # owner = 1 + floor(draw * users), user playlists only
    tracks_by_genre: Sampler
    tracks_by_artist: Sampler
    tracks_overall: Sampler
    artists_by_genre: Sampler
    playlists_by_genre: Sampler
    track_ids: np.ndarray
    context_vocab: np.ndarray  # playlist ids, album ids, artist ids, radio:<genre>
    context_base: dict[int, int]
    coprime: np.ndarray  # coprime[n, j]: j-th stride coprime to n (for shuffled playlists)
    coprime_count: np.ndarray


def build_catalogue(seed: int, start_ms: int) -> Catalogue:
    rng = np.random.default_rng([seed, CATALOGUE_STREAM])
    genres = truth.GENRE_NAMES
    n_genres = len(genres)
    genre_weight = np.array([truth.GENRE_WEIGHTS.get(g, 1.0) for g in genres])
    means = {k: np.array([truth.GENRES[g][k] for g in genres]) for k in truth.GENRES[genres[0]]}

    # Artists: Zipf-like play weight by a random popularity rank.
    n_art = truth.N_ARTISTS
    artist_rank = rng.permutation(n_art) + 1
    artist_weight = artist_rank.astype(float) ** -truth.POPULARITY_ZIPF_EXPONENT
    primary = _choice(rng, genre_weight, n_art)
    n_art_genres = _choice(rng, truth.ARTIST_GENRE_COUNT_WEIGHTS, n_art) + 1
    artist_ids = np.array([f"art_{i:05d}" for i in range(n_art)], dtype=object)
    adjectives = ("Blue", "Velvet", "Electric", "Silent", "Golden", "Neon", "Wild", "Paper",
                  "Crystal", "Midnight", "Northern", "Lazy", "Broken", "Lucky", "Hollow")
    nouns = ("Foxes", "Harbour", "Engines", "Lanterns", "Tides", "Owls", "Satellites", "Rivers",
             "Machines", "Gardens", "Comets", "Wolves", "Mirrors", "Echoes", "Pilots")
    artist_names = [f"{adjectives[i % 15]} {nouns[(i // 15) % 15]} {i // 225 + 1}"
                    for i in range(n_art)]
    ag_rows = []
    for a in range(n_art):
        others = rng.permutation(np.delete(np.arange(n_genres), primary[a]))
        for rank, g in enumerate([primary[a], *others[: n_art_genres[a] - 1]], start=1):
            ag_rows.append((artist_ids[a], genres[g], rank))
    artist_pop = np.clip(np.round(100 * (1 + np.log(artist_weight) / np.log(n_art))), 0, 100)
    artists = pd.DataFrame({
        "artist_id": artist_ids, "artist_name": artist_names,
        "popularity": artist_pop.astype(int),
        "followers": np.round(artist_weight * 5e6 * rng.lognormal(0, 0.3, n_art)).astype(int),
    })
    artist_genres = pd.DataFrame(ag_rows, columns=["artist_id", "genre", "genre_rank"])

    # One album per artist; tracks numbered within the album, contiguous in track order.
    album_size = rng.integers(truth.ALBUM_TRACKS_MIN, truth.ALBUM_TRACKS_MAX + 1, n_art)
    album_first = np.concatenate([[0], np.cumsum(album_size)[:-1]])
    n_tracks = int(album_size.sum())
    track_album = np.repeat(np.arange(n_art), album_size)
    track_number = np.arange(n_tracks) - album_first[track_album] + 1
    track_genre = primary[track_album]
    track_weight = (artist_weight[track_album] * rng.lognormal(0, 0.6, n_tracks)
                    * np.where(track_number <= 3, 2.0, 1.0))
    logw = np.log(track_weight)
    track_pop = np.round(100 * (logw - logw.min()) / (logw.max() - logw.min()))
    duration = np.clip(truth.TRACK_DURATION_MEDIAN_MS * rng.lognormal(0, 0.3, n_tracks),
                       truth.TRACK_DURATION_MIN_MS, truth.TRACK_DURATION_MAX_MS).astype(np.int64)
    track_ids = np.array([f"trk_{i:06d}" for i in range(n_tracks)], dtype=object)
    album_ids = np.array([f"alb_{i:05d}" for i in range(n_art)], dtype=object)
    release_year = np.clip(2025 - np.round(rng.exponential(10, n_art)), 1950, 2025).astype(int)
    explicit_p = np.where(np.isin(np.array(genres)[track_genre], ["hip hop", "rap"]), 0.5, 0.08)
    tracks = pd.DataFrame({
        "track_id": track_ids,
        "track_name": [f"Song {n} of {a}" for n, a in zip(track_number, album_ids[track_album],
                                                          strict=True)],
        "artist_id": artist_ids[track_album],
        "album_id": album_ids[track_album],
        "album_name": [f"Album {a[4:]}" for a in album_ids[track_album]],
        "release_year": release_year[track_album],
        "duration_ms": duration,
        "popularity": track_pop.astype(int),
        "is_explicit": rng.random(n_tracks) < explicit_p,
    })

    conc = truth.AUDIO_FEATURE_CONCENTRATION

    def beta(key: str) -> np.ndarray:
        m = np.clip(means[key][track_genre], 0.02, 0.98)
        return rng.beta(m * conc, (1 - m) * conc)

    features = {k: beta(k) for k in ("dance", "energy", "valence", "acoustic", "instr",
                                     "speech", "live")}
    audio = pd.DataFrame({
        "track_id": track_ids,
        "danceability": features["dance"], "energy": features["energy"],
        "key": rng.integers(0, 12, n_tracks),
        "loudness": np.clip(rng.normal(means["loud"][track_genre], 2.5), -45, -0.5),
        "mode": (rng.random(n_tracks) < 0.6).astype(int),
        "speechiness": features["speech"], "acousticness": features["acoustic"],
        "instrumentalness": features["instr"], "liveness": features["live"],
        "valence": features["valence"],
        "tempo": np.clip(rng.normal(means["tempo"][track_genre], 12), 50, 220),
        "time_signature": np.array([4, 3, 5])[_choice(rng, (0.9, 0.07, 0.03), n_tracks)],
    })

    tracks_by_genre = make_sampler(track_genre, track_weight, n_genres)
    tracks_by_artist = make_sampler(track_album, track_weight, n_art)
    tracks_overall = make_sampler(np.zeros(n_tracks, dtype=np.int64), track_weight, 1)

    # Playlists: exact type shares, one or two main genres, 85% of tracks from them.
    n_pl = truth.N_PLAYLISTS
    type_counts = [round(s * n_pl) for s in truth.PLAYLIST_TYPE_SHARES.values()]
    type_counts[-1] = n_pl - sum(type_counts[:-1])
    pl_type = rng.permutation(np.repeat(np.arange(3), type_counts))
    pl_genre = _choice(rng, genre_weight, n_pl)
    pl_size = rng.integers(truth.PLAYLIST_TRACKS_MIN, truth.PLAYLIST_TRACKS_MAX + 1, n_pl)
    pl_second = np.where(rng.random(n_pl) < 0.5, _choice(rng, genre_weight, n_pl), pl_genre)
    pl_tracks: list[np.ndarray] = []
    pt_rows = []
    pl_created = start_ms - rng.integers(30 * MS_DAY, 730 * MS_DAY, n_pl)
    prob = track_weight / track_weight.sum()
    for p in range(n_pl):
        in_genre = np.flatnonzero(np.isin(track_genre, [pl_genre[p], pl_second[p]]))
        n_main = min(round(pl_size[p] * truth.PLAYLIST_MAIN_GENRE_SHARE), len(in_genre))
        w = track_weight[in_genre]
        main = rng.choice(in_genre, n_main, replace=False, p=w / w.sum())
        rest = rng.choice(n_tracks, pl_size[p] * 2, replace=True, p=prob)
        rest = rest[~np.isin(rest, main)]
        rest = np.unique(rest)[: pl_size[p] - n_main]
        slots = rng.permutation(np.concatenate([main, rest]))
        pl_size[p] = len(slots)
        pl_tracks.append(slots)
        added = pl_created[p] + np.sort(rng.integers(0, start_ms - pl_created[p], len(slots)))
        pt_rows.append(pd.DataFrame({"playlist_id": f"pl_{p:04d}",
                                     "position": np.arange(1, len(slots) + 1),
                                     "track_id": track_ids[slots],
                                     "added_at": pd.to_datetime(added, unit="ms")}))
    playlist_ids = np.array([f"pl_{p:04d}" for p in range(n_pl)], dtype=object)
    type_names = contract.PLAYLIST_TYPES
    playlists = pd.DataFrame({
        "playlist_id": playlist_ids,
        "playlist_name": [f"{genres[g].title()} {type_names[t]} mix {p}"
                          for p, (g, t) in enumerate(zip(pl_genre, pl_type, strict=True))],
        "playlist_type": np.array(type_names)[pl_type],
        "owner_user_id": pd.array([pd.NA] * n_pl, dtype="Int64"),
        "created_at": pd.to_datetime(pl_created, unit="ms"),
    })

    coprime = np.zeros((truth.PLAYLIST_TRACKS_MAX + 1, truth.PLAYLIST_TRACKS_MAX + 1),
                       dtype=np.int64)
    coprime_count = np.zeros(truth.PLAYLIST_TRACKS_MAX + 1, dtype=np.int64)
    for n in range(1, truth.PLAYLIST_TRACKS_MAX + 1):
        strides = [b for b in range(1, n + 1) if math.gcd(b, n) == 1]
        coprime[n, : len(strides)] = strides
        coprime_count[n] = len(strides)

    vocab = np.concatenate([playlist_ids, album_ids, artist_ids,
                            np.array([f"radio:{g}" for g in genres], dtype=object)])
    base = {PLAYLIST: 0, ALBUM: n_pl, ARTIST: n_pl + n_art, RADIO: n_pl + 2 * n_art}
    return Catalogue(
        frames={"artists": artists, "artist_genres": artist_genres, "tracks": tracks,
                "audio_features": audio, "playlists": playlists,
                "playlist_tracks": pd.concat(pt_rows, ignore_index=True)},
        track_genre=track_genre, track_energy=features["energy"],
        track_dance=features["dance"], track_valence=features["valence"],
        track_duration=duration, track_album=track_album, album_first_track=album_first,
        album_size=album_size, artist_genre=primary,
        playlist_tracks=np.concatenate(pl_tracks),
        playlist_offset=np.concatenate([[0], np.cumsum(pl_size)[:-1]]),
        playlist_size=pl_size, playlist_type=pl_type,
        playlist_owner_draw=np.where(pl_type == 2, rng.random(n_pl), np.nan),
        tracks_by_genre=tracks_by_genre, tracks_by_artist=tracks_by_artist,
        tracks_overall=tracks_overall,
        artists_by_genre=make_sampler(primary, artist_weight, n_genres),
        playlists_by_genre=make_sampler(pl_genre, np.ones(n_pl), n_genres),
        track_ids=track_ids, context_vocab=vocab, context_base=base,
        coprime=coprime, coprime_count=coprime_count,
    )


@dataclass(frozen=True)
class Window:
    start_ms: int
    end_ms: int


@dataclass
class Experiment:
    exp_id: str
    variants: list[str]
    lo_ms: int
    hi_ms: int
    skip_shift: np.ndarray  # per variant
    mu_shift: np.ndarray


def experiments(window: Window) -> list[Experiment]:
    out = []
    for exp_id, spec in truth.EXPERIMENTS.items():
        names = list(spec["variants"])
        lo, hi = spec["window_days"]
        out.append(Experiment(
            exp_id, names, window.start_ms + lo * MS_DAY, window.start_ms + hi * MS_DAY,
            np.array([spec["skip_logit_shift"].get(v, 0.0) for v in names]),
            np.array([spec["session_log_mu_shift"].get(v, 0.0) for v in names])))
    return out


def make_users(rng: np.random.Generator, first_id: int, n: int, window: Window,
               exps: list[Experiment]) -> dict[str, np.ndarray]:
    lo = window.start_ms - truth.SIGNUP_DAYS_BEFORE_START * MS_DAY
    hi = window.end_ms - truth.SIGNUP_DAYS_BEFORE_END * MS_DAY
    premium = rng.random(n) < truth.PREMIUM_SHARE
    fav = _choice(rng, [truth.GENRE_WEIGHTS.get(g, 1.0) for g in truth.GENRE_NAMES], n)
    m = np.array([truth.GENRES[g]["energy"] for g in truth.GENRE_NAMES])[fav]
    c = truth.PREFERRED_ENERGY_CONCENTRATION
    rate_mean = np.where(premium, truth.WEEKLY_SESSION_RATE_MEAN["premium"],
                         truth.WEEKLY_SESSION_RATE_MEAN["free"])
    shape = truth.WEEKLY_SESSION_RATE_SHAPE
    birth = rng.integers(truth.BIRTH_YEAR_MIN, truth.BIRTH_YEAR_MAX + 1, n)
    device_order = [DEVICES.index(d) for d in truth.PRIMARY_DEVICE_WEIGHTS]
    users = {
        "user_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "signup_ms": rng.integers(lo, hi, n),
        "premium": premium,
        "country": _choice(rng, truth.COUNTRY_WEIGHTS.values(), n),
        "birth_year": birth,
        "birth_missing": rng.random(n) < truth.BIRTH_YEAR_MISSING_SHARE,
        "skip_u": rng.normal(0, truth.SKIP_PROPENSITY_SD, n),
        "fav_genre": fav,
        "pref_energy": rng.beta(m * c, (1 - m) * c),
        "rate": rng.gamma(shape, rate_mean / shape),
        "length_s": rng.normal(0, truth.SESSION_LENGTH_EFFECT_SD, n),
        "primary_device": np.array(device_order)[
            _choice(rng, truth.PRIMARY_DEVICE_WEIGHTS.values(), n)],
    }
    for exp in exps:
        spec = truth.EXPERIMENTS[exp.exp_id]
        _, variant = assignment.assign(spec["salt"], spec["traffic_share"], spec["variants"],
                                       users["user_id"])
        users[f"variant:{exp.exp_id}"] = variant
    return users


def schedule_sessions(rng: np.random.Generator, users: dict[str, np.ndarray],
                      window: Window) -> dict[str, np.ndarray]:
    """Alive weeks (geometric survival), sessions per week, start times; sorted by user."""
    n = len(users["user_id"])
    signup = users["signup_ms"]
    survival = np.where(users["premium"], truth.WEEKLY_SURVIVAL["premium"],
                        truth.WEEKLY_SURVIVAL["free"])
    lifetime = rng.geometric(1 - survival)  # P(lifetime > k) = survival^k: alive weeks 0..L-1
    weeks_in_range = -(-(window.end_ms - signup) // MS_WEEK)
    # Weeks that end before the window start (minus a day of slack for pushes) never matter.
    first_week = np.maximum(0, (window.start_ms - MS_DAY - signup) // MS_WEEK)
    last_week = np.minimum(lifetime, weeks_in_range)
    n_weeks = np.maximum(last_week - first_week, 0)
    wk_user = np.repeat(np.arange(n), n_weeks)
    wk_index = (np.arange(len(wk_user)) - np.repeat(np.cumsum(n_weeks) - n_weeks, n_weeks)
                + first_week[wk_user])
    per_week = 1 + rng.poisson(np.maximum(users["rate"][wk_user] - 1, 0))
    s_user = np.repeat(wk_user, per_week)
    week_start = signup[s_user] + np.repeat(wk_index, per_week) * MS_WEEK
    start = _start_times(rng, week_start)
    order = np.lexsort((start, s_user))
    sess = {"user": s_user[order], "start": start[order], "week_start": week_start[order]}
    keep = (sess["start"] >= window.start_ms - MS_DAY) & (sess["start"] < window.end_ms)
    sess = {k: v[keep] for k, v in sess.items()}
    m = len(sess["user"])
    primary = users["primary_device"][sess["user"]]
    other = (primary + rng.integers(1, len(DEVICES), m)) % len(DEVICES)
    sess["device"] = np.where(rng.random(m) < truth.PRIMARY_DEVICE_SHARE, primary, other)
    sess["first_context"] = _choice(rng, truth.CONTEXT_SHARES.values(), m)
    return sess


def _start_times(rng: np.random.Generator, week_start: np.ndarray) -> np.ndarray:
    """A start in [week_start, week_start + 7 d): weighted calendar day and hour of day."""
    hour_p = np.array(truth.HOUR_WEIGHTS) / sum(truth.HOUR_WEIGHTS)
    weekday_w = np.array(truth.WEEKDAY_WEIGHTS)
    day0 = week_start - week_start % MS_DAY
    dow0 = (day0 // MS_DAY + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    # Day offsets 0..7 cover the 7-day week; weights per day, then reject starts outside it.
    day_w = weekday_w[(dow0[:, None] + np.arange(8)[None, :]) % 7]
    day_cum = np.cumsum(day_w, axis=1)
    out = np.empty(len(week_start), dtype=np.int64)
    todo = np.arange(len(week_start))
    while len(todo):
        u = rng.random(len(todo)) * day_cum[todo, -1]
        day = (u[:, None] >= day_cum[todo]).sum(axis=1)
        hour = rng.choice(24, size=len(todo), p=hour_p)
        t = day0[todo] + day * MS_DAY + hour * MS_HOUR + rng.integers(0, MS_HOUR, len(todo))
        ok = (t >= week_start[todo]) & (t < week_start[todo] + MS_WEEK)
        out[todo[ok]] = t[ok]
        todo = todo[~ok]
    return out


def _run_lengths(rng: np.random.Generator, ctx: np.ndarray, cap: np.ndarray,
                 pl_shift: np.ndarray) -> np.ndarray:
    """Tracks per run: continue from track k to k+1 with the context's planted probability."""
    length = np.ones(len(ctx), dtype=np.int64)
    base = np.select([ctx == PLAYLIST, ctx == ALBUM, ctx == SEARCH],
                     [truth.PLAYLIST_CONTINUE, truth.ALBUM_CONTINUE,
                      truth.OTHER_CONTINUE["search"]], truth.OTHER_CONTINUE["radio"])
    dropoff = np.where(ctx == PLAYLIST, truth.PLAYLIST_DROPOFF_CONTINUE, base) + pl_shift
    base = base + pl_shift
    active = np.flatnonzero(cap > 1)
    k = 1
    while len(active):
        p = dropoff[active] if k in truth.PLAYLIST_DROPOFF_STEPS else base[active]
        go = rng.random(len(active)) < p
        active = active[go]
        length[active] += 1
        k += 1
        active = active[length[active] < cap[active]]
    return length


def session_effects(users: dict[str, np.ndarray], sess: dict[str, np.ndarray],
                    exps: list[Experiment]) -> tuple[np.ndarray, np.ndarray]:
    """log(mu) of each session's target length and its skip-logit shift (experiments).
    Draws nothing: the oracle truth recomputes it without touching the random stream."""
    u = sess["user"]
    premium = users["premium"][u]
    hour = (sess["start"] // MS_HOUR) % 24
    night, evening = hour < 6, hour >= 18
    b = truth.SESSION_LENGTH
    log_mu = (b["intercept"] + b["premium"] * premium + b["hour_18_23"] * evening
              + b["hour_0_5"] * night
              + b["device_smart_speaker"] * (sess["device"] == DEVICES.index("smart_speaker"))
              + b["device_desktop"] * (sess["device"] == DEVICES.index("desktop"))
              + b["first_context_playlist"] * (sess["first_context"] == PLAYLIST)
              + b["first_context_album"] * (sess["first_context"] == ALBUM)
              + users["length_s"][u])
    skip_shift = np.zeros(len(u))
    for exp in exps:
        variant = users[f"variant:{exp.exp_id}"][u]
        inside = (variant >= 0) & (sess["start"] >= exp.lo_ms) & (sess["start"] < exp.hi_ms)
        log_mu = log_mu + np.where(inside, exp.mu_shift[variant], 0.0)
        skip_shift = skip_shift + np.where(inside, exp.skip_shift[variant], 0.0)
    return log_mu, skip_shift


def simulate(rng: np.random.Generator, cat: Catalogue, users: dict[str, np.ndarray],
             sess: dict[str, np.ndarray],
             exps: list[Experiment]) -> tuple[dict, np.ndarray, dict]:
    """Plays of the given sessions (per-play arrays, 'sess' = index into sess) and durations."""
    n_s = len(sess["user"])
    u = sess["user"]
    premium = users["premium"][u]
    hour = (sess["start"] // MS_HOUR) % 24
    night = hour < 6
    log_mu, skip_shift = session_effects(users, sess, exps)
    target = np.minimum(1 + rng.poisson(np.exp(log_mu)), truth.SESSION_TARGET_TRACKS_MAX)

    # Runs: add runs until the target is reached; the last run is not cut (except at the cap).
    runs = []
    total = np.zeros(n_s, dtype=np.int64)
    active = np.arange(n_s)
    r = 0
    fav_all = users["fav_genre"]
    while len(active):
        m = len(active)
        ctx = (sess["first_context"][active] if r == 0
               else _choice(rng, truth.CONTEXT_SHARES.values(), m))
        fav = fav_all[u[active]]
        use_fav = rng.random(m) < truth.FAVOURITE_GENRE_SHARE
        entity = np.full(m, -1, dtype=np.int64)
        cap = np.full(m, truth.SESSION_TRACKS_MAX, dtype=np.int64)
        shuffle = np.zeros(m, dtype=bool)
        pl_shift = np.zeros(m)
        # playlist: favourite-genre playlist (when there is one) or any playlist
        sel = np.flatnonzero(ctx == PLAYLIST)
        if len(sel):
            pick_fav = use_fav[sel] & cat.playlists_by_genre.has(fav[sel])
            pl = rng.integers(0, len(cat.playlist_size), len(sel))
            fav_sel = sel[pick_fav]
            pl[pick_fav] = cat.playlists_by_genre.draw(rng, fav[fav_sel])
            entity[sel] = pl
            cap[sel] = cat.playlist_size[pl]
            prem = premium[active[sel]]
            shuffle[sel] = rng.random(len(sel)) < np.where(
                prem, truth.SHUFFLE_PROB["premium"], truth.SHUFFLE_PROB["free"])
            type_shift = np.array(list(truth.PLAYLIST_TYPE_CONTINUE_SHIFT.values()))
            pl_shift[sel] = (type_shift[cat.playlist_type[pl]]
                             + truth.PLAYLIST_PREMIUM_CONTINUE_SHIFT * prem)
        # album / artist: an artist from the favourite genre or by popularity
        sel = np.flatnonzero((ctx == ALBUM) | (ctx == ARTIST))
        if len(sel):
            artist = cat.artists_by_genre.draw(rng, fav[sel])
            any_artist = cat.tracks_overall.draw(rng, np.zeros(len(sel), dtype=np.int64))
            artist = np.where(use_fav[sel], artist, cat.track_album[any_artist])
            entity[sel] = artist
            is_album = ctx[sel] == ALBUM
            cap[sel[is_album]] = cat.album_size[artist[is_album]]
        # radio: the favourite genre or the genre of a popular track
        sel = np.flatnonzero(ctx == RADIO)
        if len(sel):
            any_track = cat.tracks_overall.draw(rng, np.zeros(len(sel), dtype=np.int64))
            entity[sel] = np.where(use_fav[sel], fav[sel], cat.track_genre[any_track])
        length = _run_lengths(rng, ctx, cap, pl_shift)
        length = np.minimum(length, truth.SESSION_TRACKS_MAX - total[active])
        runs.append({"sess": active, "order": np.full(m, r), "ctx": ctx, "entity": entity,
                     "shuffle": shuffle, "length": length, "offset": total[active].copy()})
        total[active] += length
        active = active[(total[active] < target[active])
                        & (total[active] < truth.SESSION_TRACKS_MAX)]
        r += 1
    run = {k: np.concatenate([x[k] for x in runs]) for k in runs[0]}
    order = np.lexsort((run["order"], run["sess"]))
    run = {k: v[order] for k, v in run.items()}

    # Plays: expand runs; k = 0-based position within the run.
    n_p = int(run["length"].sum())
    rid = np.repeat(np.arange(len(run["sess"])), run["length"])
    k = np.arange(n_p) - np.repeat(np.cumsum(run["length"]) - run["length"], run["length"])
    s = run["sess"][rid]
    ctx = run["ctx"][rid]
    entity = run["entity"][rid]
    pos_in_session = run["offset"][rid] + k + 1
    fav = fav_all[u[s]]
    track = np.empty(n_p, dtype=np.int64)
    position = np.zeros(n_p, dtype=np.int64)  # 0 = null
    context_code = np.full(n_p, -1, dtype=np.int64)

    sel = np.flatnonzero(ctx == PLAYLIST)
    pl = entity[sel]
    size = cat.playlist_size[pl]
    # Shuffle: positions a, a+b, a+2b, ... (mod size) with b coprime to size: a random order.
    rr = run["shuffle"]
    n_runs = len(rr)
    is_pl = run["ctx"] == PLAYLIST
    r_size = np.where(is_pl, cat.playlist_size[np.where(is_pl, run["entity"], 0)], 1)
    r_a = rng.integers(0, 1 << 30, n_runs) % r_size
    r_b = cat.coprime[r_size, rng.integers(0, 1 << 30, n_runs) % cat.coprime_count[r_size]]
    r_a = np.where(rr, r_a, 0)
    r_b = np.where(rr, r_b, 1)
    slot = (r_a[rid[sel]] + k[sel] * r_b[rid[sel]]) % size
    track[sel] = cat.playlist_tracks[cat.playlist_offset[pl] + slot]
    position[sel] = slot + 1
    context_code[sel] = cat.context_base[PLAYLIST] + pl

    sel = np.flatnonzero(ctx == ALBUM)
    track[sel] = cat.album_first_track[entity[sel]] + k[sel]
    position[sel] = k[sel] + 1
    context_code[sel] = cat.context_base[ALBUM] + entity[sel]

    sel = np.flatnonzero(ctx == ARTIST)
    track[sel] = cat.tracks_by_artist.draw(rng, entity[sel])
    context_code[sel] = cat.context_base[ARTIST] + entity[sel]

    sel = np.flatnonzero(ctx == RADIO)
    track[sel] = cat.tracks_by_genre.draw(rng, entity[sel])
    context_code[sel] = cat.context_base[RADIO] + entity[sel]

    sel = np.flatnonzero((ctx == COLLECTION) | (ctx == SEARCH))
    by_genre = cat.tracks_by_genre.draw(rng, fav[sel])
    overall = cat.tracks_overall.draw(rng, np.zeros(len(sel), dtype=np.int64))
    track[sel] = np.where(rng.random(len(sel)) < truth.FAVOURITE_GENRE_SHARE, by_genre, overall)

    # Skips.
    c = truth.SKIP
    shuffle = run["shuffle"][rid]
    prem_p = premium[s]
    night_p = night[s]
    logit = (c["intercept"]
             + c["abs_energy_minus_preferred"]
             * np.abs(cat.track_energy[track] - users["pref_energy"][u[s]])
             + c["danceability_minus_0_5"] * (cat.track_dance[track] - 0.5)
             + c["valence_minus_0_5"] * (cat.track_valence[track] - 0.5)
             + c["favourite_genre"] * (cat.track_genre[track] == fav)
             + c["position_in_session_minus_1_max_20"] * np.minimum(pos_in_session - 1, 20)
             + c["hour_0_5"] * night_p + c["radio"] * (ctx == RADIO)
             + c["album"] * (ctx == ALBUM) + c["search"] * (ctx == SEARCH)
             + c["shuffle"] * shuffle + c["premium"] * prem_p + users["skip_u"][u[s]])
    p_skip = _sigmoid(logit + skip_shift[s])
    skipped = rng.random(n_p) < p_skip

    duration = cat.track_duration[track]
    last = np.zeros(n_p, dtype=bool)
    last[np.cumsum(np.bincount(s, minlength=n_s))[np.bincount(s, minlength=n_s) > 0] - 1] = True
    roll = rng.random(n_p)
    frac = rng.uniform(*truth.LATE_SKIP_FRACTION, n_p)
    ms = duration.copy()
    end = np.full(n_p, REASON_END["trackdone"], dtype=np.int64)
    ended = ~skipped & last & (roll < truth.LAST_PLAY_END_SHARE)
    late = ~skipped & ~ended & (rng.random(n_p) < truth.LATE_SKIP_SHARE)
    partial = np.maximum(truth.SKIP_THRESHOLD_MS + 1, (frac * duration).astype(np.int64))
    ms = np.where(ended | late, partial, ms)
    end[late] = REASON_END["fwdbtn"]
    end[ended] = np.where(rng.random(int(ended.sum())) < truth.LAST_PLAY_LOGOUT_SHARE,
                          REASON_END["logout"], REASON_END["endplay"])
    lo_ms, hi_ms = truth.SKIP_MS_PLAYED
    ms = np.where(skipped, rng.integers(lo_ms, hi_ms + 1, n_p), ms)
    end[skipped] = np.where(rng.random(int(skipped.sum())) < truth.SKIP_BACKBTN_SHARE,
                            REASON_END["backbtn"], REASON_END["fwdbtn"])

    first_of_session = pos_in_session == 1
    first_of_run = (k == 0) & ~first_of_session
    start_reason = np.empty(n_p, dtype=np.int64)
    follow = {REASON_END["trackdone"]: "trackdone", REASON_END["fwdbtn"]: "fwdbtn",
              REASON_END["backbtn"]: "backbtn"}
    prev_end = np.concatenate([[REASON_END["trackdone"]], end[:-1]])
    start_reason[:] = REASON_START["trackdone"]
    for code, name in follow.items():
        start_reason[prev_end == code] = REASON_START[name]
    names = list(truth.FIRST_PLAY_REASON_START)
    pick = _choice(rng, truth.FIRST_PLAY_REASON_START.values(), int(first_of_session.sum()))
    start_reason[first_of_session] = np.array([REASON_START[x] for x in names])[pick]
    names = list(truth.RUN_START_REASON_START)
    pick = _choice(rng, truth.RUN_START_REASON_START.values(), int(first_of_run.sum()))
    start_reason[first_of_run] = np.array([REASON_START[x] for x in names])[pick]

    # Timing: next start = previous start + ms_played + 0-3 s (+ 5-60 s at a run change).
    step = ms + rng.integers(truth.PLAY_GAP_S[0] * 1000, truth.PLAY_GAP_S[1] * 1000 + 1, n_p)
    gap_before = np.where(first_of_run, rng.integers(truth.RUN_CHANGE_GAP_S[0] * 1000,
                                                     truth.RUN_CHANGE_GAP_S[1] * 1000 + 1,
                                                     n_p), 0)
    inc = np.concatenate([[0], step[:-1]]) + gap_before
    inc[first_of_session] = 0
    cum = np.cumsum(inc)
    offset = cum - cum[np.flatnonzero(first_of_session)][np.cumsum(first_of_session) - 1]
    started = sess["start"][s] + offset
    durations = np.zeros(n_s, dtype=np.int64)
    durations[s[last]] = offset[last] + ms[last]

    plays = {"sess": s, "pos": pos_in_session, "track": track, "started": started, "ms": ms,
             "ctx": ctx, "context_code": context_code, "position": position,
             "reason_start": start_reason, "reason_end": end, "shuffle": shuffle,
             "skipped": skipped, "logit": logit + skip_shift[s]}
    extra = {"target": target, "tracks": total}
    return plays, durations, extra


def resolve_sessions(rng: np.random.Generator, cat: Catalogue, users: dict, sess: dict,
                     exps: list[Experiment]) -> tuple[dict, dict, dict]:
    """Simulate, then push sessions that start within 35 min of the previous end.

    A pushed session is simulated again at its new start (its hour changes its length and
    skips); one that would leave its week is dropped. Repeats until nothing overlaps.
    """
    n_s = len(sess["user"])
    plays, durations, extra = simulate(rng, cat, users, sess, exps)
    parts = [(np.arange(n_s), plays, extra)]
    alive = np.ones(n_s, dtype=bool)
    start = sess["start"].copy()
    min_gap = truth.SESSION_GAP_MINUTES_MIN * 60_000
    pushed = np.zeros(n_s, dtype=bool)
    while True:
        idx = np.flatnonzero(alive)
        same = np.concatenate([[False], sess["user"][idx][1:] == sess["user"][idx][:-1]])
        prev_end = np.concatenate([[0], start[idx][:-1] + durations[idx][:-1]])
        conflict = same & (start[idx] <= prev_end + min_gap)
        if not conflict.any():
            break
        first = conflict & ~np.concatenate([[False], conflict[:-1]])
        moved = idx[first]
        start[moved] = prev_end[first] + min_gap + rng.integers(60_000, 25 * 60_000,
                                                                  len(moved))
        gone = start[moved] >= sess["week_start"][moved] + MS_WEEK
        alive[moved[gone]] = False
        moved = moved[~gone]
        pushed[moved] = True
        if len(moved):
            sub = {k: v[moved] for k, v in sess.items()}
            sub["start"] = start[moved]
            p, d, e = simulate(rng, cat, users, sub, exps)
            p["sess"] = moved[p["sess"]]
            durations[moved] = d
            parts.append((moved, p, e))
    # The latest simulation of each session wins.
    latest = np.full(n_s, -1)
    for i, (ids, _, _) in enumerate(parts):
        latest[ids] = i
    keep_sess = alive.copy()
    sess = dict(sess, start=start)
    chosen, targets, tracks = [], np.zeros(n_s, dtype=np.int64), np.zeros(n_s, dtype=np.int64)
    for i, (ids, p, e) in enumerate(parts):
        mine = latest[ids] == i
        targets[ids[mine]] = e["target"][mine]
        tracks[ids[mine]] = e["tracks"][mine]
        keep = (latest[p["sess"]] == i) & keep_sess[p["sess"]]
        chosen.append({k: v[keep] for k, v in p.items()})
    plays = {k: np.concatenate([c[k] for c in chosen]) for k in chosen[0]}
    order = np.lexsort((plays["pos"], plays["sess"]))
    plays = {k: v[order] for k, v in plays.items()}
    info = {"alive": alive, "durations": durations, "target": targets, "tracks": tracks,
            "pushed": pushed}
    return sess, plays, info


OracleSink = Callable[[pd.DataFrame, pd.DataFrame], None]


@dataclass
class Totals:
    users: int = 0
    sessions: int = 0
    plays: int = 0
    pushes: int = 0
    drops: int = 0
    target_tracks: int = 0
    capped_sessions: int = 0
    quality: dict[str, int] = field(default_factory=lambda: dict.fromkeys(truth.QUALITY_RATES, 0))
    outcome_sums: dict[str, dict[str, float]] = field(default_factory=dict)
    user_frames: list[pd.DataFrame] = field(default_factory=list)
    assignment_frames: list[pd.DataFrame] = field(default_factory=list)


def _strings(codes: np.ndarray, vocab: np.ndarray) -> pd.arrays.ArrowStringArray:
    """Dictionary-decode integer codes (-1 = null) into an Arrow-backed string array."""
    indices = pa.array(codes, type=pa.int32(), mask=codes < 0)
    arr = pa.DictionaryArray.from_arrays(indices, pa.array(vocab, type=pa.string()))
    return pd.arrays.ArrowStringArray(arr.dictionary_decode())


def _joined(*parts) -> pd.arrays.ArrowStringArray:
    import pyarrow.compute as pc

    cols = [p if isinstance(p, str) else pa.array(p).cast(pa.string()) for p in parts]
    return pd.arrays.ArrowStringArray(pc.binary_join_element_wise(*cols, ""))


def events_frame(cat: Catalogue, users: dict, sess: dict, plays: dict,
                 session_number: np.ndarray) -> pd.DataFrame:
    s = plays["sess"]
    user_id = users["user_id"][sess["user"][s]]
    n = session_number[s]
    position = plays["position"]
    return pd.DataFrame({
        "event_id": _joined("ev", user_id, "-", n, "-", plays["pos"]),
        "user_id": user_id,
        "track_id": _strings(plays["track"], cat.track_ids),
        "session_hint": _joined("s", user_id, "-", n),
        "started_at": plays["started"].astype("datetime64[ms]"),
        "ms_played": plays["ms"],
        "context_type": _strings(plays["ctx"], np.array(CONTEXTS, dtype=object)),
        "context_id": _strings(plays["context_code"], cat.context_vocab),
        "position_in_context": pd.arrays.IntegerArray(position, position == 0),
        "reason_start": _strings(plays["reason_start"],
                                 np.array(contract.REASON_STARTS, dtype=object)),
        "reason_end": _strings(plays["reason_end"], np.array(contract.REASON_ENDS, dtype=object)),
        "is_shuffle": plays["shuffle"],
        "device": _strings(sess["device"][s], np.array(DEVICES, dtype=object)),
    })


def quality_rows(rng: np.random.Generator, events: pd.DataFrame, window: Window,
                 counts: dict[str, int]) -> pd.DataFrame:
    """Extra bad rows: exact duplicates and corrupted copies with new event ids."""
    n = len(events)
    extra = []
    for kind, rate in truth.QUALITY_RATES.items():
        rows = np.flatnonzero(rng.random(n) < rate)
        if not len(rows):
            continue
        bad = events.iloc[rows].copy()
        if kind != "duplicate":
            bad["event_id"] = _joined(bad["event_id"].array, f"-q-{kind}")
        if kind == "negative_ms_played":
            bad["ms_played"] = -rng.integers(1, 30_000, len(rows))
        elif kind == "ms_played_over_24h":
            bad["ms_played"] = MS_DAY + rng.integers(1, 10 * MS_DAY, len(rows))
        elif kind == "unknown_track_id":
            bad["track_id"] = _joined(truth.UNKNOWN_TRACK_PREFIX, rng.integers(0, 10**6,
                                                                               len(rows)))
        elif kind == "unknown_user_id":
            bad["user_id"] = truth.UNKNOWN_USER_ID_BASE + rng.integers(1, 10**6, len(rows))
        elif kind == "started_at_2099":
            shift = datetime(2099, 1, 1) - datetime(1970, 1, 1) - timedelta(
                milliseconds=window.start_ms)
            bad["started_at"] = bad["started_at"] + shift
        counts[kind] += len(rows)
        extra.append(bad)
    return pd.concat(extra, ignore_index=True) if extra else events.iloc[:0]


def expected_target_tracks(log_mu: np.ndarray) -> np.ndarray:
    """E[min(1 + Poisson(mu), cap)] = 1 + sum over k < cap - 1 of P(Poisson(mu) > k), exact."""
    from scipy.stats import poisson

    k = np.arange(truth.SESSION_TARGET_TRACKS_MAX - 1)
    return 1.0 + poisson.sf(k[None, :], np.exp(log_mu)[:, None]).sum(axis=1)


def oracle_frames(seed: int, chunk: int, cat: Catalogue, users: dict, sess: dict,
                  plays: dict, info: dict, emitted_idx: np.ndarray,
                  session_number: np.ndarray, events: pd.DataFrame,
                  exps: list[Experiment]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per emitted play its true P(skip); per emitted session log(mu), the exact expected
    target length and the expected duration (mean of ORACLE_DURATION_REPLAYS replays of the
    session from its own random stream, so the data's stream is not touched)."""
    play_truth = pd.DataFrame({"event_id": events["event_id"].iloc[:len(plays["logit"])],
                               "skip_logit": plays["logit"],
                               "skip_probability": _sigmoid(plays["logit"])})
    sub = {k: v[emitted_idx] for k, v in sess.items()}
    log_mu, _ = session_effects(users, sub, exps)
    rng = np.random.default_rng([seed, chunk, truth.ORACLE_STREAM])
    replays = truth.ORACLE_DURATION_REPLAYS
    total = np.zeros(len(emitted_idx))
    squares = np.zeros(len(emitted_idx))
    for _ in range(replays):
        _, durations, _ = simulate(rng, cat, users, sub, exps)
        seconds = durations / 1000.0
        total += seconds
        squares += seconds ** 2
    mean = total / replays
    # variance of the mean of the replays (sample variance / replays)
    variance = np.maximum(squares - replays * mean ** 2, 0.0) / (replays - 1) / replays
    user_id = users["user_id"][sub["user"]]
    session_truth = pd.DataFrame({
        "session_hint": _joined("s", user_id, "-", session_number[emitted_idx]),
        "user_id": user_id,
        "started_at": sub["start"].astype("datetime64[ms]"),
        "log_mu": log_mu,
        "expected_target_tracks": expected_target_tracks(log_mu),
        "target_tracks": info["target"][emitted_idx],
        "expected_duration_seconds": mean,
        "expected_duration_variance": variance,
        "duration_replays": replays,
    })
    return play_truth, session_truth


def generate_chunks(seed: int, n_sessions: int, window: Window, cat: Catalogue,
                    totals: Totals, progress=None,
                    oracle_sink: OracleSink | None = None) -> Iterator[pd.DataFrame]:
    """Yield listening_events frames chunk by chunk until exactly n_sessions are emitted;
    each chunk's oracle truth goes to oracle_sink (play frame, session frame) first."""
    exps = experiments(window)
    chunk = 0
    while totals.sessions < n_sessions:
        rng = np.random.default_rng([seed, chunk])
        users = make_users(rng, chunk * CHUNK_USERS + 1, CHUNK_USERS, window, exps)
        sess = schedule_sessions(rng, users, window)
        sess, plays, info = resolve_sessions(rng, cat, users, sess, exps)
        emitted = info["alive"] & (sess["start"] >= window.start_ms)
        emitted_idx = np.flatnonzero(emitted)
        n_users = CHUNK_USERS
        need = n_sessions - totals.sessions
        if len(emitted_idx) >= need:
            emitted_idx = emitted_idx[:need]
            n_users = int(sess["user"][emitted_idx[-1]]) + 1 if need else 0
            emitted = np.zeros_like(emitted)
            emitted[emitted_idx] = True
        # Session numbers count a user's emitted sessions from 1.
        user_of = sess["user"][emitted_idx]
        first_of_user = np.concatenate([[True], user_of[1:] != user_of[:-1]])
        group_start = np.flatnonzero(first_of_user)
        session_number = np.zeros(len(emitted), dtype=np.int64)
        session_number[emitted_idx] = (np.arange(len(emitted_idx))
                                       - group_start[np.cumsum(first_of_user) - 1] + 1)
        keep = emitted[plays["sess"]]
        plays = {k: v[keep] for k, v in plays.items()}

        events = events_frame(cat, users, sess, plays, session_number)
        bad = quality_rows(rng, events, window, totals.quality)
        if oracle_sink is not None:
            oracle_sink(*oracle_frames(seed, chunk, cat, users, sess, plays, info,
                                       emitted_idx, session_number, events, exps))
        for exp in exps:
            if exp.skip_shift.any():
                sums = totals.outcome_sums.setdefault(exp.exp_id, {})
                # Only plays that are emitted count: recompute over the kept plays.
                _accumulate_outcomes(sums, exp, users, sess, plays, cat)
        totals.user_frames.append(_users_frame(users, n_users))
        totals.assignment_frames.append(_assignments(users, sess, emitted_idx, exps))
        totals.users += n_users
        totals.sessions += len(emitted_idx)
        totals.plays += len(events)
        of_kept_user = sess["user"] < n_users
        totals.pushes += int((info["pushed"] & emitted).sum())
        totals.drops += int((~info["alive"] & of_kept_user).sum())
        totals.target_tracks += int(info["target"][emitted_idx].sum())
        totals.capped_sessions += int((info["tracks"][emitted_idx]
                                       >= truth.SESSION_TRACKS_MAX).sum())
        if progress is not None:
            progress.update(len(emitted_idx))
        else:
            log.info("chunk %d: %d users, %d sessions, %d plays (total %d/%d sessions)",
                     chunk, n_users, len(emitted_idx), len(events), totals.sessions,
                     n_sessions)
        yield pd.concat([events, bad], ignore_index=True) if len(bad) else events
        chunk += 1


def _accumulate_outcomes(sums: dict, exp: Experiment, users: dict, sess: dict, plays: dict,
                         cat: Catalogue) -> None:
    """P(skip) of every emitted in-window play of enrolled users, under every arm."""
    s = plays["sess"]
    u = sess["user"][s]
    variant = users[f"variant:{exp.exp_id}"][u]
    start = sess["start"][s]
    mask = (variant >= 0) & (start >= exp.lo_ms) & (start < exp.hi_ms)
    base = plays["logit"][mask] - exp.skip_shift[variant[mask]]
    for i, v in enumerate(exp.variants):
        sums[v] = sums.get(v, 0.0) + float(_sigmoid(base + exp.skip_shift[i]).sum())
    sums["_plays"] = sums.get("_plays", 0.0) + float(mask.sum())


def _users_frame(users: dict, n: int) -> pd.DataFrame:
    countries = np.array(list(truth.COUNTRY_WEIGHTS), dtype=object)
    return pd.DataFrame({
        "user_id": users["user_id"][:n],
        "signup_at": users["signup_ms"][:n].astype("datetime64[ms]"),
        "tier": np.where(users["premium"][:n], "premium", "free"),
        "country": countries[users["country"][:n]],
        "birth_year": pd.arrays.IntegerArray(users["birth_year"][:n],
                                             users["birth_missing"][:n]),
    })


def _assignments(users: dict, sess: dict, emitted_idx: np.ndarray,
                 exps: list[Experiment]) -> pd.DataFrame:
    frames = []
    for exp in exps:
        u = sess["user"][emitted_idx]
        start = sess["start"][emitted_idx]
        variant = users[f"variant:{exp.exp_id}"][u]
        inside = (variant >= 0) & (start >= exp.lo_ms) & (start < exp.hi_ms)
        if not inside.any():
            continue
        # Sessions are sorted by user and start: the first in-window one is the assignment.
        u_in, start_in, var_in = u[inside], start[inside], variant[inside]
        first = np.concatenate([[True], u_in[1:] != u_in[:-1]])
        frames.append(pd.DataFrame({
            "experiment_id": exp.exp_id,
            "user_id": users["user_id"][u_in[first]],
            "variant": np.array(exp.variants, dtype=object)[var_in[first]],
            "assigned_at": start_in[first].astype("datetime64[ms]"),
        }))
    if not frames:
        return pd.DataFrame(columns=["experiment_id", "user_id", "variant", "assigned_at"])
    return pd.concat(frames, ignore_index=True)


def experiment_frames(window: Window) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, variants = [], []
    for exp in experiments(window):
        spec = truth.EXPERIMENTS[exp.exp_id]
        rows.append({"experiment_id": exp.exp_id, "experiment_name": spec["name"],
                     "hypothesis": spec["hypothesis"], "salt": spec["salt"],
                     "traffic_share": spec["traffic_share"],
                     "started_at": pd.Timestamp(exp.lo_ms, unit="ms"),
                     "ended_at": pd.Timestamp(exp.hi_ms, unit="ms")})
        for v, w in spec["variants"].items():
            variants.append({"experiment_id": exp.exp_id, "variant": v, "weight": w})
    return pd.DataFrame(rows), pd.DataFrame(variants)


def truth_rows(totals: Totals, rows_per_table: dict[str, int]) -> pd.DataFrame:
    rows = list(truth.parameters())
    rows += [
        ("count.users", totals.users, "users generated (raw.users rows)"),
        ("count.sessions", totals.sessions, "sessions emitted (distinct session_hint)"),
        ("count.plays", totals.plays, "clean plays (listening_events minus quality rows)"),
        ("count.sessions_pushed", totals.pushes,
         "emitted sessions moved later to start > 35 min after the previous one ended"),
        ("count.sessions_dropped", totals.drops, "sessions dropped: a push left their week"),
        ("count.sessions_at_play_cap", totals.capped_sessions,
         "sessions cut at the hard cap on plays"),
        ("session_length.mean_target_tracks",
         totals.target_tracks / max(totals.sessions, 1),
         "mean target n of emitted sessions (plays per session is n plus the overshoot of "
         "the uncut last run)"),
    ]
    for kind, n in totals.quality.items():
        rows.append((f"quality.count.{kind}", n, f"extra rows planted: {kind}"))
    rows.append(("quality.count.total", sum(totals.quality.values()), "all planted bad rows"))
    for exp_id, sums in totals.outcome_sums.items():
        n = sums.get("_plays", 0.0)
        for v in truth.EXPERIMENTS[exp_id]["variants"] if n else ():
            rows.append((f"experiment.{exp_id}.potential_skip_rate.{v}", sums[v] / n,
                         "mean P(skip) of every in-window play of every enrolled user (both "
                         f"arms) had the user been in {v}: the true play-weighted skip rate"))
        rows.append((f"experiment.{exp_id}.potential_plays", n,
                     "in-window plays of enrolled users the potential outcomes average over"))
    for table, n in rows_per_table.items():
        rows.append((f"rows.{table}", n, f"rows loaded into raw.{table}"))
    return pd.DataFrame(rows, columns=["parameter", "value", "description"])


def clear_oracle_truth(conn: db.Connection) -> None:
    """Create the oracle truth tables if missing and empty them (a rerun replaces them)."""
    for statement in truth.oracle_ddl():
        db.execute(conn, statement)
    db.execute(conn, f"truncate {truth.PLAY_TRUTH_TABLE}, {truth.SESSION_TRUTH_TABLE}")


def write_truth(conn: db.Connection, frame: pd.DataFrame) -> None:
    db.execute(conn, f"delete from {contract.RAW_SCHEMA}.generator_truth")
    db.copy_frame(conn, f"{contract.RAW_SCHEMA}.generator_truth", frame)


def run(database: str | None, n_sessions: int, seed: int, start_date: str,
        days: int) -> dict[str, int]:
    t0 = time.monotonic()
    start = datetime.fromisoformat(start_date)
    window = Window(_ms(start), _ms(start + timedelta(days=days)))
    cat = build_catalogue(seed, window.start_ms)
    totals = Totals()
    rows: dict[str, int] = {}
    warehouse.init(database)

    def loaded(table: str, chunks) -> None:
        # raw.load_batches is keyed on batch_id alone, so each table gets its own batch.
        result = load.load(conn, table, chunks, batch_id=f"{BATCH_ID}:{table}", source=SOURCE)
        if result.rows_rejected:
            raise RuntimeError(f"{table}: {result.rows_rejected} generated rows broke the "
                               "contract (see raw.load_rejects)")
        rows[table] = result.rows_loaded

    progress = None
    if logs.show_progress():
        from tqdm import tqdm

        progress = tqdm(total=n_sessions, unit="session", desc="generate")
    with db.connect(database) as conn:
        for table in ("artists", "artist_genres", "tracks", "audio_features",
                      "playlist_tracks"):
            loaded(table, [cat.frames[table]])
        clear_oracle_truth(conn)
        oracle_rows = {"generator_play_truth": 0, "generator_session_truth": 0}

        def oracle_sink(play_truth: pd.DataFrame, session_truth: pd.DataFrame) -> None:
            # COPY between two listening_events chunks: the connection is idle then.
            oracle_rows["generator_play_truth"] += db.copy_frame(
                conn, truth.PLAY_TRUTH_TABLE, play_truth)
            oracle_rows["generator_session_truth"] += db.copy_frame(
                conn, truth.SESSION_TRUTH_TABLE, session_truth)

        loaded("listening_events", generate_chunks(seed, n_sessions, window, cat, totals,
                                                   progress, oracle_sink))
        if progress is not None:
            progress.close()
        loaded("users", totals.user_frames)
        playlists = cat.frames["playlists"].copy()
        is_user = ~np.isnan(cat.playlist_owner_draw)
        owners = 1 + np.floor(np.nan_to_num(cat.playlist_owner_draw) * max(totals.users, 1))
        playlists["owner_user_id"] = pd.arrays.IntegerArray(owners.astype(np.int64), ~is_user)
        loaded("playlists", [playlists])
        exp_frame, variant_frame = experiment_frames(window)
        loaded("experiments", [exp_frame])
        loaded("experiment_variants", [variant_frame])
        loaded("experiment_assignments", totals.assignment_frames)
        write_truth(conn, truth_rows(totals, rows))
    db.settle(database, [f"{contract.RAW_SCHEMA}.{table}" for table in rows]
              + [truth.PLAY_TRUTH_TABLE, truth.SESSION_TRUTH_TABLE])
    rows["generator_truth"] = len(truth_rows(totals, rows))
    rows.update(oracle_rows)
    rows["_seconds"] = round(time.monotonic() - t0, 1)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m python_jobs.generate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=truth.DEFAULT_SESSIONS)
    parser.add_argument("--seed", type=int, default=truth.DEFAULT_SEED)
    parser.add_argument("--start-date", default=truth.DEFAULT_START_DATE)
    parser.add_argument("--days", type=int, default=truth.DEFAULT_DAYS)
    config.add_common_args(parser)
    args = parser.parse_args(argv)
    logs.setup(args.log_level)
    if args.sessions < 1 or args.days < 1:
        parser.error("--sessions and --days must be positive")
    rows = run(args.database, args.sessions, args.seed, args.start_date, args.days)
    seconds = rows.pop("_seconds")
    for table, n in rows.items():
        print(f"raw.{table}: {n} rows")
    print(f"generated {args.sessions} sessions (seed {args.seed}) in {seconds} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
