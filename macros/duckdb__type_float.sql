{#- dbt's default type_float() is `float`, a 32-bit REAL on DuckDB; the project's floats are
    doubles on every engine, so DuckDB and Postgres agree to 1e-9. -#}
{% macro duckdb__type_float() %}double{% endmacro %}
