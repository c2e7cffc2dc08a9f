{#- The raw tables (source identifiers) upstream of the model being built: only their
    changes concern it. A walk up dbt's graph; each node is queued once, so the loop's bound
    (every node and source) is never reached before the queue is empty. -#}
{% macro incremental_source_tables() %}
    {% set ns = namespace(todo=[model.unique_id], seen=[model.unique_id], tables=[]) %}
    {% for _ in range((graph.nodes | length) + (graph.sources | length) + 1) %}
        {% if ns.todo %}
            {% set uid = ns.todo.pop() %}
            {% if uid in graph.sources and graph.sources[uid].schema == 'raw' %}
                {% do ns.tables.append(graph.sources[uid].identifier) %}
            {% elif uid in graph.nodes %}
                {% for parent in graph.nodes[uid].depends_on.nodes if parent not in ns.seen %}
                    {% do ns.seen.append(parent) %}
                    {% do ns.todo.append(parent) %}
                {% endfor %}
            {% endif %}
        {% endif %}
    {% endfor %}
    {{ return(ns.tables | unique | sort) }}
{% endmacro %}
