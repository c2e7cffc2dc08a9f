#!/usr/bin/env bash
# System packages the full test suite needs: R with DBI/RPostgreSQL for r_scripts/, Chromium
# for the report test, Java for the Spark target. Debian packages only; idempotent.
set -euo pipefail
packages=(r-base-core r-cran-dbi r-cran-rpostgresql r-cran-ggplot2 r-cran-dplyr chromium
          fonts-dejavu-core openjdk-17-jre-headless)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
