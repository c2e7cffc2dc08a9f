"""Run the project's dbt in a subprocess against one database, for tests and throwaway builds.

Each caller gives its own work folder, so concurrent builds never share target/ or logs/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from python_jobs import config

DBT = str(Path(sys.executable).with_name("dbt"))


def run(database: str, work: Path, *args: str, target: str = "postgres",
        timeout: int = 900) -> subprocess.CompletedProcess:
    """`dbt ARGS` with PGDATABASE=database; raises with dbt's output when it fails."""
    env = {**os.environ, "PGDATABASE": database, "DBT_TARGET": target,
           "DBT_TARGET_PATH": str(work / "target"), "DBT_LOG_PATH": str(work / "logs"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run([DBT, *args], cwd=config.ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"dbt {' '.join(args)} failed (exit {result.returncode}):\n"
                           f"{result.stdout[-4000:]}{result.stderr[-2000:]}")
    return result
