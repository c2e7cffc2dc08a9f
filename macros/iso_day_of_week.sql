{#- ISO weekday, 1 = Monday .. 7 = Sunday; the engines spell it differently. -#}
{% macro iso_day_of_week(ts) %}{{ return(adapter.dispatch('iso_day_of_week')(ts)) }}{% endmacro %}

{% macro default__iso_day_of_week(ts) %}cast(extract(isodow from {{ ts }}) as int){% endmacro %}

{% macro spark__iso_day_of_week(ts) %}extract(dayofweek_iso from {{ ts }}){% endmacro %}

{% macro duckdb__iso_day_of_week(ts) %}cast(isodow({{ ts }}) as int){% endmacro %}
