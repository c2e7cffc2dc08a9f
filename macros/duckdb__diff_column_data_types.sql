{#- on_schema_change: fail on DuckDB: an incremental run's new rows carry HUGEINT sums where
    the contract made the table BIGINT (see duckdb__format_column); that is no schema change.
    Any other type difference is, as in dbt's default. -#}
{% macro duckdb__diff_column_data_types(source_columns, target_columns) %}
    {%- set result = [] -%}
    {%- for sc in source_columns -%}
        {%- set tc = target_columns | selectattr('name', 'equalto', sc.name) | list | first -%}
        {%- if tc
            and sc.expanded_data_type != tc.expanded_data_type
            and not sc.can_expand_to(other_column=tc)
            and not (sc.dtype | upper == 'HUGEINT' and tc.dtype | upper == 'BIGINT') -%}
            {%- do result.append({'column_name': tc.name, 'new_type': sc.expanded_data_type}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(result) }}
{% endmacro %}
