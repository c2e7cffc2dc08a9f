"""Which server the settings point at: embedded by default, external when PGHOST says so."""

import os
import socket
import subprocess
import sys

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


def test_a_command_that_cannot_reach_the_database_says_so_in_one_line():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(port), "PGPASSWORD": "x"}
    env.pop("PGPASSFILE", None)
    for command in (["python_jobs.generate", "--sessions", "1"], ["python_jobs.train"],
                    ["python_jobs.ab", "analyze", "--all"], ["python_jobs.report"]):
        result = subprocess.run([sys.executable, "-m", *command], env=env, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: database:") and str(port) in last, (command, last)
