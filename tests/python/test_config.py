"""Which server the settings point at: embedded by default, external when PGHOST says so."""

import pytest

from python_jobs import config


@pytest.mark.parametrize(("env", "embedded", "port"), [
    ({}, True, 54329),
    ({"PGPORT": "54400"}, True, 54400),
    ({"PGHOST": "127.0.0.1", "PGPORT": "54329"}, True, 54329),
    ({"PGHOST": "localhost", "PGPORT": "5432"}, False, 5432),
    ({"PGHOST": "db.internal"}, False, 54329),
])
def test_embedded_or_external(monkeypatch, env, embedded, port):
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = config.settings()
    assert (settings.embedded, settings.port) == (embedded, port)


def test_password_never_in_repr(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "s3cret")
    settings = config.settings()
    assert settings.dsn()["password"] == "s3cret"
    assert "s3cret" not in repr(settings)
