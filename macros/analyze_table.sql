{#- Post-hook: fresh planner statistics for a table dbt just built. Without them PostgreSQL
    guesses 200 groups for every aggregate over a new table and picks nested loops that run
    for hours at 1M sessions. Spark needs none; views have no statistics.

    Incremental runs too: the days a run adds must be in the day columns' statistics, or the
    planner takes a filter on the new day for one row and joins it by nested loop (one day's
    fct_plays took a minute at 200,000 sessions when a daily run kept the old statistics).

    Only when this transaction wrote rows into the table: a run with nothing to rebuild
    leaves the statistics as they are (at 200,000 sessions such a run spent 10.6 s of its
    models' time re-analyzing unchanged tables). When it wrote fewer rows than a tenth of
    those the table had (a daily run), only the date and timestamp columns are analyzed, from
    a sample of 9,000 rows instead of 30,000: the other columns' distributions barely move
    with a day, the table's row and page counts are renewed either way, and a day's share is
    estimated as closely (130,227 rows of one day of a half of the sessionized plays at 1M
    sessions, estimated 133,757). That half's ANALYZE took 2.3 s, 0.37 s so. -#}
{% macro analyze_table() %}
    {%- if target.type != 'postgres' or config.get('materialized') not in ('table', 'incremental') -%}
        {{ return('') }}
    {%- endif -%}
    do $analyze$
    declare
        relation regclass := '{{ this }}';
        written bigint := pg_stat_get_xact_tuples_inserted(relation)
            + pg_stat_get_xact_tuples_updated(relation) + pg_stat_get_xact_tuples_deleted(relation);
        stored real := (select reltuples from pg_class where oid = relation);
        previous_target text := current_setting('default_statistics_target');
        day_columns text := (
            select string_agg(quote_ident(attname), ', ') from pg_attribute
            where
                attrelid = relation and attnum > 0 and not attisdropped
                and atttypid in ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype)
        );
    begin
        if written = 0 then
            return;
        elsif written < 0.1 * stored and day_columns is not null then
            perform set_config('default_statistics_target', '30', true);
            execute format('analyze %s (%s)', relation, day_columns);
            perform set_config('default_statistics_target', previous_target, true);
        else
            execute format('analyze %s', relation);
        end if;
    end
    $analyze$
{% endmacro %}
