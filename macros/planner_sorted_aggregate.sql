{#- Pre-hook for an aggregate whose rows barely aggregate (int_user_track_days_aggregated: 14.3M
    groups from 15.1M plays at 1M sessions): PostgreSQL's hash table of every group took
    49.5 s there, one sort and a streaming aggregate 17.0 s (at 200k sessions 4.7-8.9 s
    against 3.1-3.4 s). Without parallel workers, whose partial aggregates would aggregate
    nothing. `set local` lasts only for the model's own transaction. -#}
{% macro planner_sorted_aggregate() %}
    {%- if target.type == 'postgres' -%}
        set local enable_hashagg = off;
        set local max_parallel_workers_per_gather = 0
    {%- endif -%}
{% endmacro %}
