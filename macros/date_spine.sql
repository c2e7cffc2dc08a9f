{#- One row per day from start_date to end_date inclusive, column `spine_date`. The
    arguments are SQL expressions (scalar subqueries allowed). -#}
{% macro date_spine(start_date, end_date) %}
    {{- return(adapter.dispatch('date_spine')(start_date, end_date)) -}}
{% endmacro %}

{% macro default__date_spine(start_date, end_date) -%}
    select cast(spine_day as date) as spine_date
    from generate_series(
        cast({{ start_date }} as timestamp),
        cast({{ end_date }} as timestamp),
        interval '1 day'
    ) as spine_days (spine_day)
{%- endmacro %}

{% macro spark__date_spine(start_date, end_date) -%}
    select explode(sequence(
        cast({{ start_date }} as date),
        cast({{ end_date }} as date),
        interval 1 day
    )) as spine_date
{%- endmacro %}

{#- DuckDB's generate_series table function takes no subqueries as arguments; the list form
    does. -#}
{% macro duckdb__date_spine(start_date, end_date) -%}
    select cast(unnest(generate_series(
        cast({{ start_date }} as timestamp),
        cast({{ end_date }} as timestamp),
        interval 1 day
    )) as date) as spine_date
{%- endmacro %}
