{#- The batch registry's change log (written by the loader, docs/incremental.md), or none
    when this warehouse has none. -#}
{% macro incremental_registry_relation() %}
    {{ return(adapter.get_relation(database=incremental_database(), schema='raw',
                                   identifier='load_changes')) }}
{% endmacro %}
