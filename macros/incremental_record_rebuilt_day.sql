{#- The first day the model's latest build rebuilt (1900-01-01: a full build), recorded by
    the pre-hook before it clears the days; data tests of incremental models test only the
    days from there on (get_where_subquery). -#}
{% macro incremental_record_rebuilt_day(first_day) -%}
    {{ incremental_state_insert("'rebuilt " ~ incremental_watermark_name() ~ "'",
                                'cast(null as ' ~ dbt.type_bigint() ~ ')',
                                "cast('" ~ (first_day or '9999-12-31') ~ "' as date)") }}
{%- endmacro %}
