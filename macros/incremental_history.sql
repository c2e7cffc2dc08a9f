{#- A select of `columns` ([name, type] pairs) from the rows of the incremental model `name`
    that the current model does not rebuild (not incremental_rebuilt_where: the days before
    its first rebuilt day, and before its first changed day the rows of the users whose
    sessions do not reach it), read through model_relation: no dbt
    dependency, so the current model's build need not wait for that model's. `name` must be
    in the current model's incremental_by_day `history`, which makes the first rebuilt day
    safe to read it at (incremental_first_rebuilt_day), and must be logged. A full build,
    or an incremental one that rebuilds every day or none: no rows (typed; the model is then
    not read at all). So too when the first rebuilt day is on or before the current model's
    oldest day (a backfill): the two hold the same plays before that day, so `name` holds
    none either, and not reading it spares its swap or truncate (should_full_refresh,
    incremental_clear_days) a wait for this query. -#}
{% macro incremental_history(name, columns) %}
    {%- if execute and name not in config.get('rebuild_history_models') -%}
        {{ exceptions.raise_compiler_error(
            name ~ " is read as history but not in incremental_by_day's history") }}
    {%- endif -%}
    {%- if execute and model_node(name).config.get('unlogged') -%}
        {{ exceptions.raise_compiler_error(
            name ~ " is read as history, so it must be logged (unlogged: false in"
            ~ " dbt_project.yml): a crash would empty it while its watermark says built") }}
    {%- endif -%}
    {%- set first_day = incremental_first_rebuilt_day() if is_incremental() else none -%}
    {%- if first_day in [none, '1900-01-01']
            or incremental_reaches_oldest(first_day, config.get('rebuild_day_column')) -%}
        {%- set typed = [] -%}
        {%- for column, type in columns -%}
            {%- do typed.append('cast(null as ' ~ type ~ ') as ' ~ column) -%}
        {%- endfor -%}
        {{ return('select ' ~ typed | join(', ') ~ ' where 1 = 0') }}
    {%- endif -%}
    {%- set relation = model_relation(name) -%}
    {%- if relation is none -%}
        {{ exceptions.raise_compiler_error(
            name ~ " is recorded as built but has no table: dbt build --full-refresh --select "
            ~ name ~ " " ~ model.name) }}
    {%- endif -%}
    {{ return('select ' ~ columns | map('first') | join(', ') ~ ' from ' ~ relation
              ~ ' where not ' ~ incremental_rebuilt_where(model_node(name).config.rebuild_day_column)) }}
{% endmacro %}
