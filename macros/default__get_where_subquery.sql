{#- Data tests read only what the latest build changed:

    - a test of an incremental model, the days its latest build rebuilt;
    - a test of a raw source table with `meta: {tested_days: {day: <its day expression>,
      rebuilt_by: <model or list of models>}}`, the rows of the days that model's latest
      build rebuilt (the earliest of the models'): every row a load, replace or remove since
      the build before touched (the model's first rebuilt day is the earliest day of those
      changes).

    A full build records 1900-01-01, so it tests everything, and `--vars '{test_all_days:
    true}'` tests every day after any build. Other models' tests, and a test's own `where`,
    behave as dbt's default. The day is read when the test is compiled (after the model ran,
    in a `dbt build`) and written as a literal: with a subquery in its place the planner
    cannot tell how few rows pass and scans every day. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- set tested_days = test_tested_days(relation) if execute and not var('test_all_days', false) -%}
    {%- if tested_days -%}
        {%- set first_day = incremental_latest_rebuilt_day(tested_days.rebuilt_by) -%}
        {%- set since = tested_days.day ~ " >= cast('" ~ first_day ~ "' as date)" -%}
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


{#- {day, rebuilt_by} for the relation a data test reads, when only some days need testing;
    none otherwise. -#}
{% macro test_tested_days(relation) %}
    {%- set tested = graph.nodes.get(model.attached_node) if model.attached_node -%}
    {%- if tested and tested.config.materialized == 'incremental'
            and tested.config.get('rebuild_day_column') -%}
        {{ return({'day': tested.config.rebuild_day_column, 'rebuilt_by': tested.name}) }}
    {%- endif -%}
    {%- for source in graph.sources.values()
            if source.schema == relation.schema and source.identifier == relation.identifier
            and source.meta.get('tested_days') -%}
        {{ return(source.meta.tested_days) }}
    {%- endfor -%}
    {{ return(none) }}
{% endmacro %}


{#- The first day the named model's latest build rebuilt, 'YYYY-MM-DD'; for a list of models
    the earliest of theirs (1900-01-01 when one has no record, or nothing was built yet, e.g.
    `dbt docs generate` on a new warehouse: test everything). -#}
{% macro incremental_latest_rebuilt_day(model_names) %}
    {%- set state = incremental_state_relation() -%}
    {%- if adapter.get_relation(database=state.database, schema=state.schema,
                                identifier=state.identifier) is none -%}
        {{ return('1900-01-01') }}
    {%- endif -%}
    {%- set days = [] -%}
    {%- for model_name in ([model_names] if model_names is string else model_names) -%}
        {%- set query -%}
            select cast(max(first_rebuilt_day) as {{ dbt.type_string() }})
            from {{ state }}
            where watermark_name = 'rebuilt {{ model_name }}' and recorded_at = (
                select max(recorded_at) from {{ state }}
                where watermark_name = 'rebuilt {{ model_name }}'
            )
        {%- endset -%}
        {%- set day = run_query(query).rows[0][0] -%}
        {%- do days.append(day[:10] if day else '1900-01-01') -%}
    {%- endfor -%}
    {{ return((days | min) if days else '1900-01-01') }}
{% endmacro %}
