{#- post-hook: the model is built up to the run's bound (a full build too). -#}
{% macro incremental_record_watermark() -%}
    insert into {{ incremental_state_relation() }}
    select
        '{{ incremental_watermark_name() }}',
        {{ incremental_run_bound() }},
        {{ dbt.current_timestamp() }},
        cast(null as date)
{%- endmacro %}
