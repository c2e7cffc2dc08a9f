{#- Post-hook: fresh planner statistics for a table dbt just built. Without them PostgreSQL
    guesses 200 groups for every aggregate over a new table and picks nested loops that run
    for hours at 1M sessions. Spark needs none; views have no statistics.

    Incremental runs too: the days a run adds must be in the day columns' statistics, or the
    planner takes a filter on the new day for one row and joins it by nested loop (one day's
    fct_plays took a minute at 200,000 sessions when a daily run kept the old statistics).

    Only when this transaction wrote rows into the table: a run with nothing to rebuild
    leaves the statistics as they are (at 200,000 sessions such a run spent 10.6 s of its
    models' time re-analyzing unchanged tables). -#}
{% macro analyze_table() %}
    {%- if target.type != 'postgres' or config.get('materialized') not in ('table', 'incremental') -%}
        {{ return('') }}
    {%- endif -%}
    do $analyze$
    declare
        relation regclass := '{{ this }}';
    begin
        if pg_stat_get_xact_tuples_inserted(relation) + pg_stat_get_xact_tuples_updated(relation)
                + pg_stat_get_xact_tuples_deleted(relation) > 0 then
            execute format('analyze %s', relation);
        end if;
    end
    $analyze$
{% endmacro %}
