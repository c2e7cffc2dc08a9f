{#- Data tests of an incremental model test only the days its latest build rebuilt (what
    changed); a full build records 1900-01-01, so it tests everything, and
    `--vars '{test_all_days: true}'` tests every day after any build. Other models'
    tests, and a test's own `where`, behave as dbt's default. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- set tested = graph.nodes.get(model.attached_node) if execute and model.attached_node -%}
    {%- if tested and tested.config.materialized == 'incremental'
            and tested.config.get('rebuild_day_column') and not var('test_all_days', false) -%}
        {%- set since -%}
            {{ tested.config.rebuild_day_column }} >= coalesce((
                select max(first_rebuilt_day) from {{ incremental_state_relation() }}
                where watermark_name = 'rebuilt {{ tested.name }}' and recorded_at = (
                    select max(recorded_at) from {{ incremental_state_relation() }}
                    where watermark_name = 'rebuilt {{ tested.name }}'
                )
            ), cast('1900-01-01' as date))
        {%- endset -%}
        {%- set where = '(' ~ where ~ ') and ' ~ since if where else since -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
