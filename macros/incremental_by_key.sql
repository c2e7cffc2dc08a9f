{#- Incremental config for per-key state over a day-keyed model: one row per key (e.g. user x
    artist) summing all of that key's days, `first_day_column` and `last_day_column` its
    oldest and newest day. An incremental
    run recomputes only the keys with an upstream row on a rebuilt day or whose stored
    newest day is a rebuilt day (their newest rows may have been removed), from all of their
    days: the model selects those keys with incremental_changed_keys() and left-joins its
    sums to them, so a key left with no rows comes out with a null last day. dbt's
    delete+insert replaces the keys; the post-hook then deletes the null rows. When the first
    rebuilt day is on or before every key's oldest day (a backfill), every key changes: the
    table is built whole from upstream (Postgres: as a full refresh, should_full_refresh;
    DuckDB: the pre-hook truncates it first). The first
    rebuilt day is incremental_by_day's (the registry's changes since the model was built);
    `days_before` must be upstream's, so that every upstream day it rebuilt is seen.

    `as_of_var`: a var that, when set, limits the sums to the days up to it (the model reads
    it); such a build is a plain table, and it deletes the model's watermark, so that the
    next build without the var rebuilds every key. Spark: always a plain table, rebuilt
    whole (its parquet tables have no delete). -#}
{% macro incremental_by_key(keys, first_day_column, last_day_column, days_before=0, as_of_var=none) %}
    {%- do build_serialized(now=true) -%}
    {% if target.type == 'spark' %}
        {{ return({'materialized': 'table', 'file_format': 'parquet'}) }}
    {% endif %}
    {#- Postgres: the delete+insert's delete finds the keys through the unique index -#}
    {%- set indexed = {} if target.type == 'duckdb' else {'indexes': [
        {'columns': keys, 'unique': true}, {'columns': [last_day_column]}]} -%}
    {% if as_of_var and var(as_of_var) %}
        {{ return(dict(indexed, materialized='table', post_hook=[
            "delete from {{ incremental_state_relation() }}"
            ~ " where watermark_name = '{{ incremental_watermark_name() }}'"])) }}
    {% endif %}
    {%- set change_driven = {
        'materialized': 'incremental',
        'incremental_strategy': 'delete+insert',
        'unique_key': keys,
        'rebuild_day_column': last_day_column,
        'rebuild_days_before': days_before,
        'rebuild_oldest_column': first_day_column,
        'pre_hook': ["{{ incremental_clear_keys('" ~ first_day_column ~ "') }}"],
        'post_hook': [
            "delete from {{ this }} where " ~ last_day_column ~ " is null",
            "{{ incremental_record_watermark() }}",
        ],
        'on_schema_change': 'fail',
    } -%}
    {{ return(dict(change_driven, **indexed)) }}
{% endmacro %}


{#- The keys an incremental run of such a model recomputes, as a query, or none when the whole
    table is built. `upstream`: the relation the model sums, keyed on `upstream_day_column`;
    `last_day_column` as given to incremental_by_key. -#}
{% macro incremental_changed_keys(keys, last_day_column, upstream, upstream_day_column) %}
    {%- if not is_incremental() -%}{{ return(none) }}{%- endif -%}
    {%- set query -%}
        select {{ keys | join(', ') }} from {{ upstream }}
        where {{ incremental_rebuilt_where(upstream_day_column) }}
        union
        select {{ keys | join(', ') }} from {{ this }}
        where {{ incremental_rebuilt_where(last_day_column) }}
    {%- endset -%}
    {{ return(query) }}
{% endmacro %}


{#- A `where` clause keeping the rows of `relation` (a name in the query) whose `keys` are among
    the changed keys of such a model; empty when the whole table is built. -#}
{% macro incremental_changed_keys_filter(changed_keys, keys, relation) %}
    {%- if not changed_keys -%}
        {{ return('') }}
    {%- endif -%}
    {%- set matched = [] -%}
    {%- for key in keys -%}
        {%- do matched.append('changed_keys.' ~ key ~ ' = ' ~ relation ~ '.' ~ key) -%}
    {%- endfor -%}
    {{ return('where exists (select 1 from (' ~ changed_keys ~ ') as changed_keys where '
              ~ matched | join(' and ') ~ ')') }}
{% endmacro %}


{#- The final select of such a model: with changed keys, every one of them left-joined to
    the rows `cte` recomputed for them, so a key left with no rows comes out with nulls (dbt's
    delete+insert removes its old row, the post-hook the null one); without, `cte` whole.
    `columns`: the columns after the keys, in the table's order. -#}
{% macro incremental_keyed_rows(changed_keys, keys, columns, cte) %}
    {%- if not changed_keys -%}
        {{ return('select * from ' ~ cte) }}
    {%- endif -%}
    {%- set selected = [] -%}
    {%- set joined = [] -%}
    {%- for key in keys -%}
        {%- do selected.append('changed_keys.' ~ key) -%}
        {%- do joined.append('changed_keys.' ~ key ~ ' = ' ~ cte ~ '.' ~ key) -%}
    {%- endfor -%}
    {%- for column in columns -%}
        {%- do selected.append(cte ~ '.' ~ column) -%}
    {%- endfor -%}
    {{ return('select ' ~ selected | join(', ') ~ ' from (' ~ changed_keys ~ ') as changed_keys'
              ~ ' left join ' ~ cte ~ ' on ' ~ joined | join(' and ')) }}
{% endmacro %}


{#- pre-hook, incremental_clear_days' twin: records the first rebuilt day, and empties the
    table when that day is on or before every stored key's oldest day. Every stored key is then
    recomputed anyway, and a surviving one has all of its upstream rows on rebuilt days, so
    the model finds it from upstream alone; deleting and re-inserting every row one by one
    costs more than building them. -#}
{% macro incremental_clear_keys(first_day_column) %}
    {%- if not execute -%}{{ return('select 1') }}{%- endif -%}
    {%- set first_day = incremental_first_rebuilt_day() -%}
    {%- set recorded = incremental_record_rebuilt_day(first_day) -%}
    {%- if first_day is none or not is_incremental()
            or not incremental_reaches_oldest(first_day, first_day_column) -%}
        {{ return(recorded) }}
    {%- endif -%}
    {{ return('truncate table ' ~ this ~ ';\n' ~ recorded) }}
{% endmacro %}
