{#- Layer schemas are named exactly staging/intermediate/marts/seeds on every target, so
    Tableau, R and the Python jobs can hard-wire them; models without one use the target's. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
