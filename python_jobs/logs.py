"""Logging set-up shared by every command."""

from __future__ import annotations

import logging
import sys


def setup(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )


def show_progress() -> bool:
    """tqdm bars only on an interactive terminal, so CI logs stay readable."""
    return sys.stderr.isatty()
