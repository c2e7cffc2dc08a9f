{#- The ml source table `name` (written by python -m python_jobs.train), or a clear error
    when it does not exist yet: before the first training run the ML wing must not be built
    (the daily run, selectors.yml, leaves it out), rather than read as silently empty. -#}
{% macro ml_source(name) %}
    {%- set relation = source('ml', name) -%}
    {%- if execute and adapter.get_relation(
            database=relation.database, schema=relation.schema,
            identifier=relation.identifier) is none -%}
        {{ exceptions.raise_compiler_error(
            relation ~ " does not exist: no model has been trained on this warehouse. Run "
            ~ "`python -m python_jobs.train` first, then `dbt build --selector ml_scoring`; "
            ~ "the daily run (`dbt build`, selector daily) leaves the ML models out.") }}
    {%- endif -%}
    {{ return(relation) }}
{% endmacro %}
