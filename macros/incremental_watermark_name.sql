{% macro incremental_watermark_name() %}
    {{ return(model.name) }}
{% endmacro %}
