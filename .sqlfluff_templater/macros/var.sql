{% macro var(name, default=none) %}{{ return(project.vars.get(name, default)) }}{% endmacro %}
