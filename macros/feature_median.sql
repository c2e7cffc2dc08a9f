{#- Median of an expression as an aggregate (use with group by); the engines spell the
    ordered-set percentile differently. Continuous median: the mean of the two middle values
    when the count is even, on both engines. -#}
{% macro feature_median(expression) %}
    {{- return(adapter.dispatch('feature_median')(expression)) -}}
{% endmacro %}

{% macro default__feature_median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{% macro spark__feature_median(expression) -%}
    percentile({{ expression }}, 0.5)
{%- endmacro %}

{% macro duckdb__feature_median(expression) -%}
    quantile_cont({{ expression }}, 0.5)
{%- endmacro %}
