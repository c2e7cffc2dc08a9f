"""Lint-only: the vars of dbt_project.yml, so `var()` renders their defaults."""

from pathlib import Path

import yaml

_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project.yml"
vars = yaml.safe_load(_PROJECT.read_text())["vars"]
