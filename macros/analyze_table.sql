{#- Post-hook: fresh planner statistics for a table dbt just built. Without them PostgreSQL
    guesses 200 groups for every aggregate over a new table and picks nested loops that run
    for hours at 1M sessions. Spark needs none; views have no statistics.

    Incremental runs too: the days a run adds must be in the day columns' statistics, or the
    planner takes a filter on the new day for one row and joins it by nested loop (one day's
    fct_plays took a minute at 200,000 sessions when a daily run kept the old statistics). -#}
{% macro analyze_table() %}
    {%- if target.type == 'postgres' and config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
