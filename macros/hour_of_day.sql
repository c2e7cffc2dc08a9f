{#- Hour 0-23 of a timestamp as an integer on both engines. -#}
{% macro hour_of_day(ts) %}{{ return(adapter.dispatch('hour_of_day')(ts)) }}{% endmacro %}

{% macro default__hour_of_day(ts) %}cast(extract(hour from {{ ts }}) as int){% endmacro %}

{% macro spark__hour_of_day(ts) %}hour({{ ts }}){% endmacro %}

{% macro duckdb__hour_of_day(ts) %}cast(hour({{ ts }}) as int){% endmacro %}
