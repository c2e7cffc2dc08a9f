"""Deterministic experiment assignment, shared by the generator and the A/B framework.

    bucket  = int(sha256(f"{salt}:{user_id}").hexdigest(), 16) mod 10000
    enrolled when bucket < traffic_share * 10000
    u       = first 8 bytes of sha256(f"{salt}:variant:{user_id}") as an unsigned
              big-endian integer / 2**64, in [0, 1)
    variant = the first variant, in order of variant name, whose cumulative normalised
              weight exceeds u

The hashes depend only on the salt and the user id, and the variant order only on the names,
so anyone can recompute an assignment from the experiment's definition alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

BUCKETS = 10_000


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def bucket(salt: str, user_id: int) -> int:
    return int.from_bytes(_digest(f"{salt}:{user_id}"), "big") % BUCKETS


def variant_draw(salt: str, user_id: int) -> float:
    return int.from_bytes(_digest(f"{salt}:variant:{user_id}")[:8], "big") / 2.0**64


def buckets(salt: str, user_ids: Iterable[int]) -> np.ndarray:
    # A digest is ~1 microsecond: a plain loop handles 100k users in well under a second.
    return np.fromiter((bucket(salt, int(u)) for u in user_ids), dtype=np.int64)


def variant_draws(salt: str, user_ids: Iterable[int]) -> np.ndarray:
    return np.fromiter((variant_draw(salt, int(u)) for u in user_ids), dtype=np.float64)


def assign(salt: str, traffic_share: float, variants: Mapping[str, float] | Sequence[tuple],
           user_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised assignment of many users.

    Returns (enrolled, variant_index): a boolean array and the index into the variants (in
    their given order) for every user; variant_index is -1 where not enrolled.
    """
    items = list(variants.items()) if isinstance(variants, Mapping) else list(variants)
    order = sorted(range(len(items)), key=lambda i: items[i][0])
    weights = np.array([items[i][1] for i in order], dtype=np.float64)
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0  # guard against rounding leaving u just above the last bound
    ids = np.asarray(user_ids, dtype=np.int64)
    enrolled = buckets(salt, ids) < round(traffic_share * BUCKETS)
    index = np.full(len(ids), -1, dtype=np.int64)
    if enrolled.any():
        draws = variant_draws(salt, ids[enrolled])
        index[enrolled] = np.asarray(order)[np.searchsorted(cumulative, draws, side="right")]
    return enrolled, index


def assign_one(salt: str, traffic_share: float, variants: Mapping[str, float],
               user_id: int) -> str | None:
    """The variant of one user, or None when the user is not enrolled (reference version)."""
    if bucket(salt, user_id) >= round(traffic_share * BUCKETS):
        return None
    u = variant_draw(salt, user_id)
    total = sum(variants.values())
    cumulative = 0.0
    names = sorted(variants)
    for name in names:
        cumulative += variants[name] / total
        if u < cumulative:
            return name
    return names[-1]
