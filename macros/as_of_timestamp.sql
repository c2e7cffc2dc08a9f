{#- "Now" for flags such as is_future: the var as_of_at when given (reproducible runs and
    tests), else the database clock as a timestamp without time zone. -#}
{% macro as_of_timestamp() -%}
    {%- if var('as_of_at', none) -%}
        cast('{{ var("as_of_at") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}
