"""Shared fixtures: a real PostgreSQL (embedded by default, or the one PG* points at)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from python_jobs import db, warehouse

# Test databases never collide with the user's own `warehouse` database, nor (under
# pytest-xdist) with another worker's: set before the test modules read it at import.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["TEST_DATABASE_PREFIX"] = (os.environ.get("TEST_DATABASE_PREFIX", "test_")
                                          + os.environ["PYTEST_XDIST_WORKER"] + "_")
TEST_PREFIX = os.environ.get("TEST_DATABASE_PREFIX", "test_")

# Modules that share one built database (python_jobs.report_demo.shared) run on one worker.
SHARED_GROUPS = {"test_report": "consumers", "test_r_scripts": "consumers",
                 "test_workbook": "consumers"}
# The longest modules first, so that under `-n 3` no worker is left with a long tail
# (their order in the last CI's --durations).
SLOWEST_FIRST = ["test_spark", "test_incremental", "test_dbt_core", "test_train",
                 "test_features", "consumers", "test_retention_funnels", "test_duckdb"]


def _unit(nodeid: str) -> str:
    """The unit of work a test belongs to under pytest-xdist: its module, or its group."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return SHARED_GROUPS.get(module, module)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        unit = _unit(item.nodeid)
        return SLOWEST_FIRST.index(unit) if unit in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: a module's own order is kept


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Each module (or group sharing a database) runs whole on one worker, so its module
    fixtures are built once; units are handed out in collection order, slowest first."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return ModuleScheduling(config, log)


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
