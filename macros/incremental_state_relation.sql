{#- Where incremental models record how far they are built: one row per build of a model
    (watermark_name = the model's name, change_id = the newest raw.load_changes row the
    build includes) and one per dbt invocation ('run ' || invocation_id: the newest change
    when the invocation started, the bound of every model it builds, so a load that commits
    while dbt runs is left whole to the next run). -#}
{% macro incremental_state_relation() %}
    {{ return(api.Relation.create(database=incremental_database(), schema='incremental',
                                  identifier='watermarks', type='table')) }}
{% endmacro %}
