{#- Milliseconds since 1970-01-01 as a bigint, for exact elapsed times between timestamps
    (dbt.datediff counts boundaries, not elapsed time). -#}
{% macro epoch_milliseconds(ts) %}
    {{- return(adapter.dispatch('epoch_milliseconds')(ts)) -}}
{% endmacro %}

{% macro default__epoch_milliseconds(ts) -%}
    cast(round(extract(epoch from {{ ts }}) * 1000) as bigint)
{%- endmacro %}

{% macro spark__epoch_milliseconds(ts) -%}
    unix_millis({{ ts }})
{%- endmacro %}

{#- Rounded to the millisecond from microseconds, as Postgres' round(epoch * 1000). -#}
{% macro duckdb__epoch_milliseconds(ts) -%}
    cast(round(epoch_us({{ ts }}) / 1000.0) as bigint)
{%- endmacro %}
