{#- Timestamp plus a number of milliseconds, exact to the millisecond (dbt.dateadd on Spark
    works in whole seconds). -#}
{% macro add_milliseconds(ts, milliseconds) %}
    {{- return(adapter.dispatch('add_milliseconds')(ts, milliseconds)) -}}
{% endmacro %}

{% macro default__add_milliseconds(ts, milliseconds) -%}
    ({{ ts }} + ({{ milliseconds }}) * interval '1 millisecond')
{%- endmacro %}

{% macro spark__add_milliseconds(ts, milliseconds) -%}
    timestamp_millis(unix_millis({{ ts }}) + ({{ milliseconds }}))
{%- endmacro %}

{#- DuckDB: `bigint * interval` overflows its 32-bit interval arithmetic; to_microseconds
    takes a bigint and keeps Postgres' microsecond rounding. -#}
{% macro duckdb__add_milliseconds(ts, milliseconds) -%}
    ({{ ts }} + to_microseconds(cast(round(({{ milliseconds }}) * 1000) as bigint)))
{%- endmacro %}
