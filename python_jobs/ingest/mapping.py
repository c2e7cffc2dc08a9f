"""Shared mappings from real-world source values to the raw contract's vocabularies.

Unknown values become missing (NULL) rather than rejecting the play: the columns are
optional in the contract, and losing a real play over a new client's reason string would bias
counts. Callers count what was blanked and log it, so new values get noticed and mapped.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd

from python_jobs import contract

# Spotify's reason strings outside the contract, mapped to the nearest contract value.
_REASON_START_EXTRA = {
    "clickside": "clickrow",   # picked from a side panel
    "uriopen": "clickrow",     # opened from a link
    "popup": "clickrow",
    "trackerror": "trackdone",  # the previous track failed, playback moved on by itself
    "persisted": "appload",    # resumed after the app restarted
}
_REASON_END_EXTRA = {
    "unexpected-exit": "unexpected",
    "unexpected-exit-while-paused": "unexpected",
    "trackerror": "unexpected",
    "clickrow": "endplay",      # the user picked another track: this one was ended
    "clickside": "endplay",
    "playbtn": "endplay",
    "uriopen": "endplay",
    "appload": "endplay",
}

# MSSD context types (and Spotify's own names) onto the contract's context vocabulary.
CONTEXT_TYPES = {
    "editorial_playlist": "playlist",
    "personalized_playlist": "playlist",
    "charts": "playlist",        # charts are served as playlists
    "user_collection": "collection",
    "catalog": "album",          # browsing the catalogue: album and artist pages
    "radio": "radio",
}


def _mapper(allowed: tuple[str, ...], extra: dict[str, str]) -> dict[str, str]:
    return {**{v: v for v in allowed}, **extra}


REASON_STARTS = _mapper(contract.REASON_STARTS, _REASON_START_EXTRA)
REASON_ENDS = _mapper(contract.REASON_ENDS, _REASON_END_EXTRA)
CONTEXTS = _mapper(contract.CONTEXT_TYPES, CONTEXT_TYPES)


def map_values(values: pd.Series, mapping: dict[str, str]) -> tuple[pd.Series, pd.Series]:
    """(mapped values, the distinct source values that had no mapping and were blanked)."""
    text = values.astype("string").str.strip().str.lower()
    mapped = text.map(mapping).astype("string")
    unknown = text[text.notna() & (text != "") & mapped.isna()]
    return mapped, unknown


# Order matters: a web player on Windows is "web", an Android TV is "tv", not "mobile".
_DEVICE_PATTERNS = (
    ("web", r"web[_ ]?player|webplayer|\bweb\b"),
    ("tv", r"android[_ ]?tv|\btv\b|_tv\b|tvos|roku|playstation|\bps[345]\b|xbox|chromecast"
           r"|cast_video|fire[_ ]?tv|smart[_ ]?tv|tizen|webos"),
    ("smart_speaker", r"sonos|echo|alexa|google[_ ]?home|cast_audio|speaker|homepod|bose"
                      r"|nest"),
    ("mobile", r"android|\bios\b|iphone|ipad|ipod|mobile|tablet|windows phone"),
    ("desktop", r"windows|os ?x|macos|mac os|linux|desktop"),
)


def device_of(platform: str | None) -> str | None:
    """Device class of a Spotify platform string such as 'Android OS 9 API 28 (...)'."""
    if platform is None or pd.isna(platform):
        return None
    text = str(platform).lower()
    for device, pattern in _DEVICE_PATTERNS:
        if re.search(pattern, text):
            return device
    return None


def stable_int(*parts: object) -> int:
    """A positive id below 2**53 from a hash of the parts: same input, same id everywhere.

    53 bits, not 63: R, Tableau and JSON read bigints as doubles, which are exact only
    below 2**53, and distinct users must not merge there.
    """
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 11


def stable_text(prefix: str, *parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}{digest[:20]}"
