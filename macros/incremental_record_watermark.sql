{#- post-hook: the model is built up to the run's bound (a full build too). -#}
{% macro incremental_record_watermark() -%}
    {{ incremental_state_insert("'" ~ incremental_watermark_name() ~ "'", incremental_run_bound(),
                                'cast(null as date)') }}
{%- endmacro %}
