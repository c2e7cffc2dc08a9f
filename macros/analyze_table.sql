{#- Post-hook: planner statistics for a table dbt just built. Without them PostgreSQL guesses
    200 groups for every aggregate over a new table and picks nested loops that run for hours
    at 1M sessions. Spark needs none; views have no statistics.

    A table with no statistics (every new table: a table model, a full refresh, a first
    build) is analyzed. An incremental run that grew its table by at most a tenth of the
    pages counted at the last ANALYZE (or VACUUM) keeps the statistics it has: a daily run
    adds a few per cent, ANALYZE samples the whole table again (about a fifth of a daily
    run's statement time when it ran after every model), and PostgreSQL's autovacuum
    analyzes the table once its changes pass its own threshold. A backfill or a first load
    after a build without plays grows the table more, so it is analyzed in the run. -#}
{% macro analyze_table() %}
    {%- if target.type == 'postgres' and config.get('materialized') in ('table', 'incremental') -%}
        do $analyze$
        begin
            if not exists (
                select from pg_stats
                where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}'
            ) or (
                select pg_relation_size(oid) > 1.1 * relpages * current_setting('block_size')::bigint
                from pg_class where oid = '{{ this }}'::regclass
            ) then
                analyze {{ this }};
            end if;
        end
        $analyze$
    {%- endif -%}
{% endmacro %}
