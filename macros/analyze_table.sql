{#- Post-hook: fresh planner statistics for a table dbt just built. Without them PostgreSQL
    guesses 200 groups for every aggregate over a new table and picks nested loops that run
    for hours at 1M sessions. Spark needs none; views have no statistics. -#}
{% macro analyze_table() %}
    {%- if target.type == 'postgres' and config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
