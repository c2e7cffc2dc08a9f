"""The embedded server lets in only whom it should (issue #18).

A second embedded server (a free port, its own WAREHOUSE_DIR) is started in a folder under
a parent created 700, as `make demo` would on a fresh machine: `python -m python_jobs.warehouse
up` and `init` in subprocesses, nothing set but the port and the folder. Then: no password is
refused over TCP and the unix socket; a wrong password is refused; replication is refused to
everyone (the server runs with wal_level=minimal); `reporter`
with its stored password connects, cannot read raw and cannot run COPY ... PROGRAM; another OS
user (`nobody`, through setpriv, with the system's python3 so it works when the clone is under
/root) can neither read the password file nor log in without a password; the server's
processes hold no gid 0; the 700 parent is still 700; a trust cluster of an earlier version is
upgraded on the next `up` with one line; a full disk makes `up` and a load stop with
one line, no traceback.

Parts that need root (another OS user, the server user, mounting a small tmpfs) are skipped
when not root, except under CI (env CI set), where CI runs as root.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import errors

from python_jobs import config, credentials


def _free_port() -> int:
    """A port nobody listens on (PGPORT+100 may be another checkout's test server)."""
    with socket.socket() as sock:
        sock.bind((config.EMBEDDED_HOST, 0))
        return sock.getsockname()[1]


PORT = _free_port()
CLEAN_ENV = ("PGHOST", "PGPASSWORD", "PGPASSFILE", "PGUSER", "PGDATABASE", "REPORTING_PASSWORD")


def _env(state: Path, port: int = PORT) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    return {**env, "WAREHOUSE_DIR": str(state), "PGPORT": str(port)}


def _warehouse(state: Path, *args: str, port: int = PORT,
               check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "python_jobs.warehouse", *args],
                            env=_env(state, port), cwd=config.ROOT, capture_output=True,
                            text=True, timeout=180)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def _layout(state: Path, port: int = PORT) -> dict:
    code = ("import json; from python_jobs import server as w; l = w.layout(); "
            "print(json.dumps({'home': str(l.home), 'pgdata': str(l.pgdata), "
            "'socket_dir': str(l.socket_dir)}))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(state, port), cwd=config.ROOT,
                         capture_output=True, text=True, check=True).stdout
    return {k: Path(v) for k, v in json.loads(out).items()}


def _passwords(state: Path) -> dict[str, str]:
    return credentials.read(state / "credentials")


def _need_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root; this test needs root")
        pytest.skip("needs root (another OS user, the server's account)")


def _connect(host: str, user: str, password: str | None, passfile: Path, **extra):
    params = {"host": host, "port": PORT, "user": user, "dbname": "warehouse",
              "passfile": str(passfile), "connect_timeout": 10, **extra}
    if password is not None:
        params["password"] = password
    return psycopg2.connect(**params)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    parent = tmp_path_factory.mktemp("locked")
    parent.chmod(0o700)
    state = parent / "wh"
    empty = parent / "empty.pgpass"
    empty.write_text("")
    empty.chmod(0o600)
    paths = _layout(state)
    try:
        up = _warehouse(state, "up")
        _warehouse(state, "init")
        yield {"state": state, "parent": parent, "up": up, "empty": empty, **paths}
    finally:
        _warehouse(state, "down", check=False)
        if paths["home"] != state:  # outside the temp folder: remove what the test made
            shutil.rmtree(paths["home"], ignore_errors=True)


def test_a_connection_without_the_password_is_refused_everywhere(server):
    passwords = _passwords(server["state"])
    superuser = config.EMBEDDED_USER
    for host in (config.EMBEDDED_HOST, str(server["socket_dir"])):
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            _connect(host, superuser, None, server["empty"])
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            _connect(host, superuser, "wrong", server["empty"])
        conn = _connect(host, superuser, passwords[superuser], server["empty"])
        conn.close()
        # wal_level=minimal, max_wal_senders=0: no replication connection for anyone, with
        # or without the password (refused before authentication)
        for extra in ({"replication": "true"}, {"replication": "database"}):
            for password in (None, "wrong", passwords[superuser]):
                with pytest.raises(psycopg2.OperationalError, match="max_wal_senders"):
                    _connect(host, superuser, password, server["empty"], **extra)
    hba = (server["pgdata"] / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and line[0] != "#"]
    assert rules and {rule[-1] for rule in rules} == {"scram-sha-256"}


def test_the_project_finds_the_password_by_itself(server):
    """What every project command relies on: PGPASSFILE exported for the embedded server."""
    code = ("import os; from python_jobs import db\n"
            "with db.connect() as c: print(db.read_sql(c, 'select current_user as u')['u'][0],"
            " os.environ['PGPASSFILE'])")
    out = subprocess.run([sys.executable, "-c", code], env=_env(server["state"]),
                         cwd=config.ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [config.EMBEDDED_USER, str(server["state"] / "credentials")]
    # A user's PGPASSWORD wins over the file (here a wrong one: refused).
    env = {**_env(server["state"]), "PGPASSWORD": "not-the-password"}
    code = ("import psycopg2; from python_jobs import config\n"
            "psycopg2.connect(**config.settings().dsn())")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=config.ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "password authentication failed" in out.stderr


def test_reporter_needs_its_password_and_reads_nothing_it_should_not(server):
    role = config.REPORTING_ROLE
    password = _passwords(server["state"])[role]
    assert len(password) >= 32
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        _connect(config.EMBEDDED_HOST, role, password + "x", server["empty"])
    conn = _connect(config.EMBEDDED_HOST, role, password, server["empty"])
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select current_user, rolsuper from pg_roles "
                        "where rolname = current_user")
            assert cur.fetchone() == (role, False)
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("select 1 from raw.listening_events limit 1")
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("create temporary table t (line text); copy t from program 'id'")
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute("select rolpassword from pg_authid")
    finally:
        conn.close()


def test_credentials_and_folders_are_private_and_the_parent_is_untouched(server):
    state, parent = server["state"], server["parent"]
    assert stat.S_IMODE(parent.stat().st_mode) == 0o700
    credentials = state / "credentials"
    info = credentials.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, os.geteuid())
    assert stat.S_IMODE(state.stat().st_mode) in (0o700, 0o710)
    assert stat.S_IMODE(server["socket_dir"].stat().st_mode) == 0o700
    sock = server["socket_dir"] / f".s.PGSQL.{PORT}"
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o700
    assert "passwords=" in server["up"].stdout
    env = _warehouse(state, "env").stdout
    assert str(credentials) in env
    assert not any(p in env + server["up"].stdout for p in _passwords(state).values())


def _python_for(user: pwd.struct_passwd) -> str:
    """An interpreter the other user can run (the venv's may sit under /root)."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing")
    for candidate in (os.path.realpath(sys._base_executable), "/usr/bin/python3"):
        ok = subprocess.run(_as(user, candidate, "-c", "pass"), capture_output=True)
        if ok.returncode == 0:
            return candidate
    pytest.skip(f"no python3 that {user.pw_name} can run")


def _as(user: pwd.struct_passwd, *command: str) -> list[str]:
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            *command]


# Runs as the other user with the system's python: no psycopg2, so it speaks the protocol.
PROBE = r"""
import json, socket, struct, sys
port, socket_dir, credentials = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = {}
try:
    open(credentials).read()
    out["credentials"] = "read"
except OSError as exc:
    out["credentials"] = type(exc).__name__

def auth_request(sock, **params):
    body = struct.pack("!I", 196608) + b"".join(
        k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    sock.sendall(struct.pack("!I", len(body) + 4) + body)
    kind, length = struct.unpack("!cI", sock.recv(5))
    payload = sock.recv(length - 4)
    return kind.decode() + (str(struct.unpack("!I", payload[:4])[0]) if kind == b"R" else "")

for name, params in (("tcp", {}), ("replication", {"replication": "true"})):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        out[name] = auth_request(sock, user="warehouse", database="postgres", **params)
try:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(f"{socket_dir}/.s.PGSQL.{port}")
        out["socket"] = auth_request(sock, user="warehouse", database="postgres")
except OSError as exc:
    out["socket"] = type(exc).__name__
print(json.dumps(out))
"""


def test_another_os_user_gets_nothing(server):
    _need_root()
    nobody = pwd.getpwnam("nobody")
    python = _python_for(nobody)
    result = subprocess.run(
        _as(nobody, python, "-c", PROBE, str(PORT), str(server["socket_dir"]),
            str(server["state"] / "credentials")),
        capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    # R10 = AuthenticationSASL (scram); a trusting server answers R0 (AuthenticationOk); E =
    # an error before authentication (no replication connections at all: max_wal_senders=0).
    assert seen == {"credentials": "PermissionError", "tcp": "R10", "replication": "E",
                    "socket": "PermissionError"}


def _server_processes(pgdata: Path) -> list[int]:
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(entry.name))
    return [postmaster, *children]


def test_the_server_runs_without_the_root_group(server):
    _need_root()
    pids = _server_processes(server["pgdata"])
    assert len(pids) > 1  # the postmaster and its background processes
    account = pwd.getpwnam("embedded_postgres")
    for pid in pids:
        status = dict(line.split(":", 1) for line in
                      Path(f"/proc/{pid}/status").read_text().splitlines())
        gids = {int(g) for g in status["Gid"].split() + status["Groups"].split()}
        assert 0 not in gids, (pid, status["Gid"], status["Groups"])
        assert int(status["Uid"].split()[0]) == account.pw_uid
    for path in server["pgdata"].rglob("*"):  # nothing it wrote is group root
        assert path.lstat().st_gid != 0 or not path.lstat().st_mode & stat.S_IWGRP, path


TRUST_HBA = """local all all trust
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
local replication all trust
host replication all 127.0.0.1/32 trust
"""


def test_a_trust_cluster_is_upgraded_on_the_next_up(server):
    """An earlier version's cluster: trust everywhere, running. `up` rewrites pg_hba.conf,
    sets new passwords (the old credentials file is gone) and says so in one line."""
    state, pgdata = server["state"], server["pgdata"]
    old = _passwords(state)
    hba = pgdata / "pg_hba.conf"
    hba.write_text(TRUST_HBA)
    from python_jobs import server as embedded

    subprocess.run([embedded._bin("pg_ctl"), "-D", str(pgdata), "reload"],
                   **embedded._as_server(), check=True, capture_output=True)
    (state / "credentials").unlink()
    conn = _connect(config.EMBEDDED_HOST, config.EMBEDDED_USER, None, server["empty"])
    conn.close()  # it trusts: the test can fail

    result = _warehouse(state, "up")
    upgraded = [line for line in result.stdout.splitlines() if line.startswith("upgraded")]
    assert len(upgraded) == 1 and "scram-sha-256" in upgraded[0], result.stdout
    assert "trust" not in hba.read_text().replace("nothing is trusted", "")
    new = _passwords(state)
    assert new.keys() == old.keys() and not set(new.values()) & set(old.values())
    with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
        _connect(config.EMBEDDED_HOST, config.EMBEDDED_USER, None, server["empty"])
    for role, password in new.items():
        _connect(config.EMBEDDED_HOST, role, password, server["empty"]).close()
    assert _warehouse(state, "up").stdout.count("upgraded") == 0


def _fill(mount: Path, leave_mb: int) -> None:
    """Leave about leave_mb MB free on the tmpfs."""
    (mount / "filler").unlink(missing_ok=True)
    free_mb = shutil.disk_usage(mount).free // 2**20
    subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'filler'}", "bs=1M",
                    f"count={max(free_mb - leave_mb, 0)}"], capture_output=True, check=True)


def _last_line_says_full(result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "full" in last and "free space" in last, result.stderr


def test_a_full_disk_gives_one_line(tmp_path):
    """On an 80 MB tmpfs: `up` with 12 MB free (initdb runs out), then a load of ~9 MB of
    events with 3 MB free (COPY runs out): each ends with one line saying what to free."""
    _need_root()
    # Under /tmp (1777), not tmp_path: pytest's folders are 700 to the server's account,
    # which would put the cluster outside the tmpfs.
    mount = Path(tempfile.mkdtemp(prefix="warehouse-full-"))
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80m,mode=0755", "tmpfs",
                           str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    state, port = mount / "wh", _free_port()
    events = tmp_path / "events.csv"
    events.write_text(
        "event_id,user_id,track_id,session_hint,started_at,ms_played,context_type,context_id,"
        "position_in_context,reason_start,reason_end,is_shuffle,device\n" + "".join(
            f"e{i},{i % 500},t{i % 900},,2026-01-01 10:{i % 60:02d}:00,{30000 + i},playlist,"
            f"p1,{i % 20},clickrow,trackdone,false,mobile\n" for i in range(100_000)))
    try:
        _fill(mount, 12)
        _last_line_says_full(_warehouse(state, "up", port=port, check=False))
        (mount / "filler").unlink()
        _warehouse(state, "up", port=port)
        assert _layout(state, port=port)["home"] == state
        _fill(mount, 3)
        load = subprocess.run([sys.executable, "-m", "python_jobs.load", str(events),
                               "--table", "listening_events"], env=_env(state, port),
                              cwd=config.ROOT, capture_output=True, text=True, timeout=120)
        _last_line_says_full(load)
    finally:
        _warehouse(state, "down", port=port, check=False)
        subprocess.run(["umount", str(mount)], capture_output=True)
        mount.rmdir()
