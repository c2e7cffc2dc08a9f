{#- on-run-end: the reporting role may enter the marts schema (model grants cover the
    tables). Only on Postgres, and only when the role exists, so a fresh server without it
    still builds. -#}
{% macro grant_schema_usage(schema_name, role) %}
    {% if execute and target.type == 'postgres' %}
        {% set role_exists = run_query(
            "select 1 from pg_roles where rolname = '" ~ role ~ "'") %}
        {% set schema_exists = run_query(
            "select 1 from information_schema.schemata where schema_name = '"
            ~ schema_name ~ "'") %}
        {% if role_exists.rows | length > 0 and schema_exists.rows | length > 0 %}
            {% do return('grant usage on schema ' ~ schema_name ~ ' to ' ~ role) %}
        {% endif %}
    {% endif %}
    {% do return('select 1') %}
{% endmacro %}
