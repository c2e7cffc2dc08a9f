{#- on-run-start: create the watermark table once and record this invocation's bound. -#}
{% macro incremental_run_start() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set state = incremental_state_relation() -%}
    {%- do create_schema(state.without_identifier()) -%}
    {%- set changes = incremental_registry_relation() -%}
    {#- Spark: a partition per row (incremental_state_insert) -#}
    {%- set spark = target.type == 'spark' -%}
    {%- call statement('incremental_watermarks') -%}
        create table if not exists {{ state }} (
            watermark_name {{ dbt.type_string() }},
            change_id {{ dbt.type_bigint() }},
            recorded_at {{ dbt.type_timestamp() }},
            first_rebuilt_day date{{ ', write_id ' ~ dbt.type_string() if spark }}
        ){{ ' using parquet partitioned by (watermark_name, write_id)' if spark }}
    {%- endcall -%}
    {%- set bound -%}
        {% if changes is none %}cast(-1 as {{ dbt.type_bigint() }}){% else %}
        coalesce((select max(change_id) from {{ changes }}), -1){% endif %}
    {%- endset -%}
    {%- call statement('incremental_run_bound') -%}
        {{ incremental_state_insert("'run " ~ invocation_id ~ "'", bound, 'cast(null as date)') }}
    {%- endcall -%}
    {%- if target.type != 'spark' -%}{%- do adapter.commit() -%}{%- endif -%}
    {{ return('') }}
{% endmacro %}
