{#- numerator / denominator as a float; null when the denominator is 0 or null. -#}
{% macro feature_safe_divide(numerator, denominator) -%}
    case
        when ({{ denominator }}) != 0
            then cast({{ numerator }} as {{ dbt.type_float() }}) / ({{ denominator }})
    end
{%- endmacro %}
