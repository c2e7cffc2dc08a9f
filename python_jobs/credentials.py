"""The embedded server's passwords: the libpq password file and scram verifiers.

The file is $WAREHOUSE_DIR/credentials (config.PASSFILE): libpq's format
(host:port:database:user:password, `:` and `\\` escaped), mode 600, owned by whoever ran
`python -m python_jobs.warehouse up`. libpq reads it through PGPASSFILE (config.settings()
exports it), so the password never travels in an environment variable or a command line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from python_jobs import config


def _escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def _split(line: str) -> list[str]:
    fields, current, chars = [], "", iter(line)
    for char in chars:
        if char == "\\":
            current += next(chars, "")
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    return [*fields, current]


def read(path: Path = config.PASSFILE) -> dict[str, str]:
    """user -> password from the embedded server's password file ({} when there is none)."""
    if not path.exists():
        return {}
    passwords: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            fields = _split(line)
            if len(fields) == 5:
                passwords.setdefault(fields[3], fields[4])
    return passwords


def write(passwords: dict[str, str], port: int, socket_dir: Path) -> None:
    """The libpq password file: one line per host spelling the server answers on (TCP
    127.0.0.1/localhost/::1 and its socket folder), this port, each role. Mode 600, replaced
    atomically; rewritten only when its content changes."""
    hosts = [config.EMBEDDED_HOST, "localhost", "::1", str(socket_dir)]
    lines = ["# The embedded PostgreSQL's passwords: a libpq password file (PGPASSFILE), written",
             "# by python -m python_jobs.warehouse up. Readable by its owner only; never commit.",
             "# python -m python_jobs.warehouse env prints how to use it."]
    lines += [":".join([_escape(host), str(port), "*", _escape(user), _escape(password)])
              for user, password in passwords.items() for host in hosts]
    text = "\n".join(lines) + "\n"
    if config.PASSFILE.exists() and config.PASSFILE.read_text() == text:
        config.PASSFILE.chmod(0o600)
        return
    partial = config.PASSFILE.with_name(f".credentials.{os.getpid()}")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(partial, config.PASSFILE)


def passwords() -> dict[str, str]:
    """The superuser's and the reporting role's passwords: stored ones, REPORTING_PASSWORD for
    the reporting role when set, new random ones (256 bits) for what is missing."""
    stored = read()
    reporting = os.environ.get("REPORTING_PASSWORD") or stored.get(config.REPORTING_ROLE)
    return {
        config.EMBEDDED_USER: stored.get(config.EMBEDDED_USER) or secrets.token_urlsafe(32),
        config.REPORTING_ROLE: reporting or secrets.token_urlsafe(32),
    }


def reporting_password() -> str | None:
    """The password the reporting role should have: REPORTING_PASSWORD, else on the embedded
    server the stored one; None leaves the role's password as it is (external servers)."""
    given = os.environ.get("REPORTING_PASSWORD")
    if given or not config.settings().embedded:
        return given
    return read().get(config.REPORTING_ROLE)


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """PostgreSQL's stored form of a scram-sha-256 password (RFC 5802/7677), so the password
    itself never reaches the server's input or log. ASCII passwords only (no SASLprep needed):
    the generated ones are."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def verifies(stored: str | None, password: str) -> bool:
    """Whether a stored scram verifier is the one of this password."""
    try:
        iterations, rest = stored.removeprefix("SCRAM-SHA-256$").split(":", 1)
        salt = base64.b64decode(rest.split("$", 1)[0])
        return hmac.compare_digest(stored, scram_verifier(password, salt, int(iterations)))
    except (AttributeError, ValueError):
        return False
