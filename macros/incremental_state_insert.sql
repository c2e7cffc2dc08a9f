{#- SQL adding one row to incremental.watermarks (incremental_state_relation): `name` and
    `change_id`, `first_day` as SQL expressions, recorded now. -#}
{% macro incremental_state_insert(name, change_id, first_day) %}
    {{ return(adapter.dispatch('incremental_state_insert')(name, change_id, first_day)) }}
{% endmacro %}

{% macro default__incremental_state_insert(name, change_id, first_day) -%}
    insert into {{ incremental_state_relation() }}
    select
        {{ name }},
        {{ change_id }},
        {{ dbt.current_timestamp() }},
        {{ first_day }}
{%- endmacro %}

{#- Spark: the table is partitioned by watermark_name (its last column) and a row replaces
    its name's partition, a dynamic partition overwrite. Such a write stages in a directory
    of its own, where an append stages in the table's _temporary/0, which the first of two
    concurrent appends to commit deletes under the other: with it, models build in
    parallel. The newest row per name is the only one read (the newest watermark, the
    latest rebuilt day). -#}
{% macro spark__incremental_state_insert(name, change_id, first_day) -%}
    insert overwrite table {{ incremental_state_relation() }} partition (watermark_name)
    select
        {{ change_id }},
        {{ dbt.current_timestamp() }},
        {{ first_day }},
        {{ name }}
{%- endmacro %}
