"""Real data in: the Spotify Web API and real listening exports, mapped to the raw contract.

    python -m python_jobs.ingest spotify --playlist ID [...]
    python -m python_jobs.ingest events FILE [FILE ...] --format raw|mssd|history
    python -m python_jobs.ingest tracks FILE [FILE ...] [--map SOURCE=TARGET ...]

See docs/ingest.md for what each loader maps and what it has to synthesise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

from python_jobs import logs

T = TypeVar("T")


def progress(items: Iterable[T], desc: str) -> Iterator[T]:
    """Chunks with a tqdm bar on a terminal, plainly otherwise (CI logs stay readable)."""
    yield from tqdm(items, desc=desc, unit="chunk", disable=not logs.show_progress())
