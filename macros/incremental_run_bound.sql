{#- This invocation's bound: the newest change recorded by on-run-start, or (a command that
    runs no hooks, e.g. compile) the newest change now. -#}
{% macro incremental_run_bound() -%}
    {%- set changes = incremental_registry_relation() -%}
    {%- set now_newest = '(select max(change_id) from ' ~ changes ~ ')' if changes is not none else '-1' -%}
    coalesce(
        (
            select max(change_id) from {{ incremental_state_relation() }}
            where watermark_name = 'run {{ invocation_id }}'
        ),
        {{ now_newest }},
        -1
    )
{%- endmacro %}
