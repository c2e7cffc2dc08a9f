{#- dbt-spark's type_float() is a 32-bit float; the project's floats are doubles on both
    engines, so Postgres and Spark agree to 1e-9. -#}
{% macro spark__type_float() %}double{% endmacro %}
