"""This project's dbt-score rules (dbt-score loads the package `dbt_score_rules` from the
directory it runs in; pyproject.toml [tool.dbt-score] says which built-in rules they replace)."""
