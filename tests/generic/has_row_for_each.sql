{#- Fails on each key of the model `of` with no row of the same key in the tested model (one row
    for each of another model's rows). `of` is read without a dbt dependency, so that the test
    runs with its model only, not whenever `of` is selected without it. Both are read from the
    earliest first rebuilt day of the tested model's and `rebuilt_by`'s latest builds on
    (`day`, a column both have): a daily run reads a few days, and a rebuild of `of` that the
    tested model missed is still covered. The tested model is read whole from that day, not
    through the usual filter to its own rebuilt days. -#}
{% test has_row_for_each(model, column_name, of, day, rebuilt_by) %}
    {%- set tested = test_tested_days(model) if execute else none -%}
    {%- set names = ([tested.rebuilt_by] if tested else []) + rebuilt_by -%}
    {%- set first_day = incremental_latest_rebuilt_day(names)
                        if execute and not var('test_all_days', false) else '1900-01-01' -%}
    {%- set expected_relation = model_relation(of) if execute else none -%}
    {%- set tested_relation = model_relation(tested.rebuilt_by) if tested else model -%}
    {%- if execute and expected_relation is none %}
    select '{{ of }} is not built' as missing_key
{%- else %}
    with expected as (
        select {{ column_name }} as expected_key
        from {{ expected_relation }}
        where {{ day }} >= cast('{{ first_day }}' as date)
    ),

    present as (
        select {{ column_name }} as present_key
        from {{ tested_relation }}
        where {{ day }} >= cast('{{ first_day }}' as date)
    )

    select expected.expected_key as missing_key
    from expected
    left join present
        on expected.expected_key = present.present_key
    where present.present_key is null
{%- endif %}
{% endtest %}
