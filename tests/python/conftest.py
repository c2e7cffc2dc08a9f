"""Shared fixtures: a real PostgreSQL (embedded by default, or the one PG* points at)."""

from __future__ import annotations

import os
from collections.abc import Callable

import psycopg2
import pytest
from psycopg2 import sql

from python_jobs import config, db, warehouse

# Test databases never collide with the user's own `warehouse` database.
TEST_PREFIX = os.environ.get("TEST_DATABASE_PREFIX", "test_")


def _drop_database(name: str) -> None:
    settings = config.settings()
    conn = psycopg2.connect(**settings.dsn("postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("drop database if exists {} with (force)").format(
            sql.Identifier(name)))
    conn.close()


@pytest.fixture
def fresh_database() -> Callable[[str], str]:
    """Factory: an empty database with the raw schema, named after the test; dropped after."""
    created: list[str] = []

    def make(suffix: str) -> str:
        name = f"{TEST_PREFIX}{suffix}"
        db.ensure_database(config.settings(name))
        _drop_database(name)
        warehouse.init(name)
        created.append(name)
        return name

    yield make
    if not os.environ.get("KEEP_TEST_DATABASES"):
        for name in created:
            _drop_database(name)
