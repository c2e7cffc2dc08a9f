"""The process's SparkSession, started as dbt-spark's `session` method starts it.

Below python_jobs.db (connect(target="spark") yields it) and python_jobs.spark (export,
register, build, compare), so neither imports the other for it.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from python_jobs import config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JAVA_HOME_DEBIAN = Path("/usr/lib/jvm/java-17-openjdk-amd64")


def state_dir() -> Path:
    """Where Spark keeps its metastore and warehouse (shared with dbt --target spark)."""
    return Path(os.environ.get("SPARK_STATE_DIR") or config.ROOT).resolve()


def session_conf(state: Path | None = None) -> dict[str, str]:
    """The SparkSession settings; profiles.yml's spark output states the same (tested)."""
    state = state or state_dir()
    return {
        "spark.master": "local[2]",
        "spark.app.name": "streaming_warehouse",
        # local mode runs everything in the driver JVM; Spark's 1g default spills (or fails)
        # on the 1M-session build. Read once, when the JVM starts.
        "spark.driver.memory": os.environ.get("SPARK_DRIVER_MEMORY") or "4g",
        # One time zone everywhere: Parquet UTC instants display as the Postgres values.
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dderby.system.home={state}",
        "spark.sql.warehouse.dir": f"{state}/spark-warehouse",
        # 200 shuffle partitions is for clusters; on two cores it is mostly task overhead.
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # dbt-spark forces this (connections.py), so our session must agree.
        "spark.sql.ansi.enabled": "false",
    }


def ensure_java_home() -> None:
    """Point pyspark at Debian's Java 17 when JAVA_HOME is unset (other JDKs may be first)."""
    if not os.environ.get("JAVA_HOME") and (JAVA_HOME_DEBIAN / "bin" / "java").exists():
        os.environ["JAVA_HOME"] = str(JAVA_HOME_DEBIAN)


def missing() -> str | None:
    """Why Spark cannot run here (None when it can): for the CLI and the tests' skip."""
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (run scripts/spark-setup.sh)"
    ensure_java_home()
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return None
    if java_home is None and shutil.which("java"):
        return None
    return "no Java runtime (run scripts/spark-setup.sh: openjdk-17-jre-headless)"


def session() -> SparkSession:
    """The process's SparkSession, built the way dbt-spark's session method builds it."""
    reason = missing()
    if reason:
        raise SystemExit(f"Spark is not available: {reason}")
    from pyspark.sql import SparkSession

    # pyspark 4.3 warns on every toPandas() that it does not fully support pandas 3 (and
    # pandas about pyspark's use of copy=); compare reads plain types through Arrow and is
    # tested with pandas 3. py4j logs at interpreter exit, after logging's streams closed.
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"pyspark\.")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_conf(state).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
