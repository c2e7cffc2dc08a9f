#!/usr/bin/env bash
# The Spark target's prerequisites: Java 17 (Debian's openjdk-17-jre-headless) and, in the
# project's venv, pyspark + dbt-spark[session]. Idempotent and quiet when all is there.
#   scripts/spark-setup.sh [VENV]        (default: .venv next to this script's folder)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
JAVA_HOME_DEBIAN=/usr/lib/jvm/java-17-openjdk-amd64
# Spark 4 runs on Java 17 or 21; the versions match requirements.lock's dbt-core 1.11.
PYSPARK_SPEC='pyspark>=4.0,<5'
DBT_SPARK_SPEC='dbt-spark[session]>=1.11,<1.12'

if [ ! -x "$JAVA_HOME_DEBIAN/bin/java" ]; then
    if ! command -v apt-get >/dev/null; then
        echo "spark-setup: no $JAVA_HOME_DEBIAN and no apt-get: install Java 17 and set JAVA_HOME" >&2
        exit 1
    fi
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "spark-setup: installing openjdk-17-jre-headless"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        openjdk-17-jre-headless >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "spark-setup: no venv at $VENV (run make setup first)" >&2
    exit 1
fi
if ! "$VENV/bin/python" -c 'import pyspark, dbt.adapters.spark, pyspark.sql' 2>/dev/null; then
    echo "spark-setup: installing pyspark and dbt-spark[session] into $VENV"
    constraints=()
    if [ -f requirements.lock ]; then constraints=(-c requirements.lock); fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${constraints[@]}" \
        "$PYSPARK_SPEC" "$DBT_SPARK_SPEC"
fi
