{#- Enforced contracts on DuckDB: integer sum() and window sums are HUGEINT (128-bit) there,
    BIGINT on Postgres. The contract's bigint column holds them (the insert fails loudly on
    overflow), so the check treats HUGEINT as BIGINT; every other type must match exactly. -#}
{% macro duckdb__format_column(column) -%}
    {%- set data_type = 'BIGINT' if column.dtype | upper == 'HUGEINT' else column.dtype -%}
    {{ return({'name': column.name, 'data_type': data_type,
               'formatted': column.column.lower() ~ ' ' ~ data_type}) }}
{%- endmacro %}
