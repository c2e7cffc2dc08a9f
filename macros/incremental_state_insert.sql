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

{#- Spark: the table is partitioned by (watermark_name, write_id), its last columns, and each
    row is a new partition, written by a dynamic partition overwrite, which stages in a
    directory of its own. An append stages in the table's _temporary/0, which the first of
    two concurrent appends to commit deletes under the other; and a write that replaced a
    name's partition deleted the file a concurrent model's read of that name had listed.
    A new partition replaces nothing: concurrent builds see the table before or after it. -#}
{% macro spark__incremental_state_insert(name, change_id, first_day) -%}
    insert overwrite table {{ incremental_state_relation() }} partition (watermark_name, write_id)
    select
        {{ change_id }},
        {{ dbt.current_timestamp() }},
        {{ first_day }},
        {{ name }},
        '{{ invocation_id }}'
{%- endmacro %}
