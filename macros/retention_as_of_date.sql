{#- The last day the retention and churn marts see: var retention_as_of_date (a 'YYYY-MM-DD'
    string) when set, else the given SQL expression. -#}
{% macro retention_as_of_date(default_expression) -%}
    {%- if var('retention_as_of_date') -%}
        cast('{{ var("retention_as_of_date") }}' as date)
    {%- else -%}
        {{ default_expression }}
    {%- endif -%}
{%- endmacro %}
