{#- Post-hook: planner statistics for a table dbt just built. Without them PostgreSQL guesses
    200 groups for every aggregate over a new table and picks nested loops that run for hours
    at 1M sessions. Spark needs none; views have no statistics.

    A table with no statistics (every new table: a table model, a full refresh, a first
    build) or grown by more than a tenth of the pages counted at its last ANALYZE or VACUUM
    (a backfill, a first load after a build without plays) is analyzed whole. Otherwise (a
    daily run adds a few per cent) only its date and timestamp columns are: the days a run
    adds must be in their statistics, or the planner takes a filter on the new day for one
    row and joins it by nested loop (a minute for one day's fct_plays at 200,000 sessions).
    The other columns' statistics change little from one day to the next, and sampling them
    too costs 3-5 times as much (about a fifth of a daily run's statement time); autovacuum
    analyzes the whole table once its changes pass its own threshold. -#}
{% macro analyze_table() %}
    {%- if target.type == 'postgres' and config.get('materialized') in ('table', 'incremental') -%}
        do $analyze$
        declare
            day_columns text;
        begin
            if not exists (
                select from pg_stats
                where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
            ) or (
                select pg_relation_size(oid) > 1.1 * relpages * current_setting('block_size')::bigint
                from pg_class where oid = '{{ this }}'::regclass
            ) then
                analyze {{ this }};
            else
                select string_agg(quote_ident(attname), ', ') into day_columns
                from pg_attribute
                where
                    attrelid = '{{ this }}'::regclass and attnum > 0 and not attisdropped
                    and atttypid in ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype);
                if day_columns is not null then
                    execute format('analyze %s (%s)', '{{ this }}', day_columns);
                end if;
            end if;
        end
        $analyze$
    {%- endif -%}
{% endmacro %}
