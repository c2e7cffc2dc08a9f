{#- dbt's should_full_refresh (the --full-refresh flag or the model's full_refresh config), and
    on PostgreSQL also true when an incremental run of a change-driven intermediate model
    would rebuild every row it holds: its first rebuilt day is on or before its oldest day (a
    backfill of the oldest days), or the table is empty. dbt then builds the model as a full
    refresh does: the query compiled as a full build (is_incremental() is false), one insert
    into a new table, its indexes built after the rows are in, the new table swapped for the
    old one. The incremental path would empty the table, write every row into a temporary
    table, insert them again and update the indexes row by row (at 1M sessions the backfill of
    the oldest week took 582 s against the full build's 356 s).

    The views over the old table are redefined over the new one before dbt drops it
    (dependent_views_kept). Not marts, which Tableau reads while the run goes on; not Spark
    (day partitions are overwritten in place) nor DuckDB.

    Decided once per rendering context and kept in the context's `model` dict, like
    incremental_rebuild_scope, which it reads: while it is being decided the model counts as
    incremental (is_incremental() calls this macro). When the whole table is rebuilt, the
    scope read so far is dropped, so that every later read sees a full build. -#}
{% macro should_full_refresh() %}
    {%- set flagged = config.get('full_refresh') -%}
    {%- if flagged is none -%}
        {%- set flagged = flags.FULL_REFRESH -%}
    {%- endif -%}
    {%- if flagged or not execute or target.type != 'postgres' or model.fqn[1] != 'intermediate'
            or config.get('materialized') != 'incremental'
            or not config.get('rebuild_day_column') -%}
        {{ return(flagged) }}
    {%- endif -%}
    {%- if 'incremental_rebuilds_all' not in model -%}
        {%- do model.update({'incremental_rebuilds_all': false}) -%}
        {%- set first_day = incremental_first_rebuilt_day() if is_incremental() else none -%}
        {%- set rebuilds_all = first_day is not none and incremental_reaches_oldest(
            first_day, config.get('rebuild_oldest_column') or config.get('rebuild_day_column')) -%}
        {%- if rebuilds_all -%}
            {%- do model.pop('incremental_rebuild_scope', none) -%}
        {%- endif -%}
        {%- do model.update({'incremental_rebuilds_all': rebuilds_all}) -%}
    {%- endif -%}
    {{ return(model['incremental_rebuilds_all']) }}
{% endmacro %}
