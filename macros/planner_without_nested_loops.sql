{#- Pre-hook for models that join many per-user aggregates: PostgreSQL estimates 200 groups for
    an aggregate over a CTE or view and then picks nested loops that re-aggregate per user
    (fct_user_features ran over 20 minutes at 1M sessions; about a minute with hash joins).
    `set local` lasts only for the model's own transaction. Spark has no such planner. -#}
{% macro planner_without_nested_loops() %}
    {%- if target.type == 'postgres' -%}
        set local enable_nestloop = off
    {%- endif -%}
{% endmacro %}
