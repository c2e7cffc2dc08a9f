{#- One term -p * ln(p) of a Shannon entropy in nats, from a count and its total; 0 when the
    count is 0 (the limit of p ln p). Sum the terms over the categories. -#}
{% macro feature_entropy_term(part_count, total_count) -%}
    case
        when {{ part_count }} > 0
            then
                0 - (cast({{ part_count }} as {{ dbt.type_float() }}) / ({{ total_count }}))
                * ln(cast({{ part_count }} as {{ dbt.type_float() }}) / ({{ total_count }}))
        else 0
    end
{%- endmacro %}
