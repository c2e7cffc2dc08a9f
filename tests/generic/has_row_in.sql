{#- Fails on each key of the model (the days its latest build rebuilt, as every data test
    here reads) with no row of the same key in `to`. Unlike dbt's relationships test, `to`
    is read only from the first of those days on (`day`, a column of both holding the same
    value for a key): on a daily run both sides are a few days, not all of `to` (the
    relationships test hashed all 15M history rows, 9 s per part at 1M sessions). -#}
{% test has_row_in(model, column_name, to, field, day) %}
{%- set tested = test_tested_days(model) if execute and not var('test_all_days', false) -%}
{%- set first_day = incremental_latest_rebuilt_day(tested.rebuilt_by) if tested else '1900-01-01' %}
    with child as (
        select {{ column_name }} as child_key from {{ model }}
    ),

    parent as (
        select {{ field }} as parent_key
        from {{ to }}
        where {{ day }} >= cast('{{ first_day }}' as date)
    )

    select child.child_key
    from child
    left join parent
        on child.child_key = parent.parent_key
    where
        child.child_key is not null
        and parent.parent_key is null
{% endtest %}
