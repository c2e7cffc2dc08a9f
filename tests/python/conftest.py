"""Shared fixtures: a real PostgreSQL (embedded by default, or the one PG* points at)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from python_jobs import db, warehouse

# Test databases never collide with the user's own `warehouse` database.
TEST_PREFIX = os.environ.get("TEST_DATABASE_PREFIX", "test_")


@pytest.fixture
def fresh_database() -> Iterator[Callable[[str], str]]:
    """Factory: an empty database with the raw schema, named after the test; dropped after."""
    created: list[str] = []

    def make(suffix: str) -> str:
        name = f"{TEST_PREFIX}{suffix}"
        db.drop_database(name)
        warehouse.init(name)
        created.append(name)
        return name

    yield make
    if not os.environ.get("KEEP_TEST_DATABASES"):
        for name in created:
            db.drop_database(name)
