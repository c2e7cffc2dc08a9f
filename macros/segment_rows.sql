{#- The rows of a CTE once per reporting segment, as segment_type / segment_value columns in
    front of the CTE's own. `segments`: [segment_type, SQL expression of its value] pairs. -#}
{% macro segment_rows(cte, segments) %}
    {%- for segment_type, value in segments %}
        {%- if not loop.first %}
    union all
        {%- endif %}
    select
        '{{ segment_type }}' as segment_type,
        {{ value }} as segment_value,
        {{ cte }}.*
    from {{ cte }}
    {%- endfor %}
{% endmacro %}
