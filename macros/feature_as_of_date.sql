{#- The day user features are computed as of (inclusive): the var features_as_of_date when
    given ('YYYY-MM-DD'), else the newest day in `relation`.`date_column` (the last day of
    data). A SQL expression; the default is a scalar subquery. -#}
{% macro feature_as_of_date(relation, date_column) -%}
    {%- if var('features_as_of_date') -%}
        cast('{{ var("features_as_of_date") }}' as date)
    {%- else -%}
        (select max({{ date_column }}) from {{ relation }})
    {%- endif -%}
{%- endmacro %}
