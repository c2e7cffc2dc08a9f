{#- Spark relations carry no database (dbt-spark refuses one other than the schema). -#}
{% macro incremental_database() %}
    {{ return(none if target.type == 'spark' else target.database) }}
{% endmacro %}
