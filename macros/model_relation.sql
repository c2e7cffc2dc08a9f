{#- The graph node of the model named `name` in this project. -#}
{% macro model_node(name) %}
    {{ return(graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
              | selectattr('name', 'equalto', name) | first) }}
{% endmacro %}


{#- The relation of the model named `name`, or none when it is not built (yet). For reading a
    table without a dbt dependency on it: only where the order of the two builds does not
    matter (incremental_history). -#}
{% macro model_relation(name) %}
    {%- set node = model_node(name) -%}
    {{ return(adapter.get_relation(database=node.database, schema=node.schema,
                                   identifier=node.alias)) }}
{% endmacro %}
