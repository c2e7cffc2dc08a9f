{#- dbt's view materialization on PostgreSQL, with the view redefined in place (create or
    replace view) instead of a new view swapped in and the old one dropped with cascade:
    that drop took every view over it along (each plain run dropped the marts fct_plays and
    fct_play_skip_features when it rebuilt int_plays_sessionized, until the run reached them;
    a run that did not select them left them dropped). In place the view keeps its identity
    and grants, and the views over it stay. A definition PostgreSQL cannot put in place (a
    column gone, renamed, moved or of another type) gets a new view, the views over the old
    one dropped with it, as dbt does. -#}
{% materialization view, adapter='postgres' %}
    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='view') -%}
    {%- set grant_config = config.get('grants') -%}
    {%- set sql_header = config.get('sql_header', none) -%}
    {%- if config.get('contract').enforced -%}
        {%- do get_assert_columns_equivalent(sql) -%}
    {%- endif -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- if existing_relation is not none and not existing_relation.is_view -%}
        {{ drop_relation_if_exists(existing_relation) }}
        {%- set existing_relation = none -%}
    {%- endif %}

    {% call statement('main') -%}
        {{ sql_header if sql_header is not none }}
        do $view_replaced$
        declare
            body text := $view_body$ {{ sql }} $view_body$;
        begin
            execute format('create or replace view %s as %s', '{{ target_relation }}', body);
        exception when invalid_table_definition or datatype_mismatch then
            raise notice '{{ target_relation }}: a new view (%), the views over the old one dropped', sqlerrm;
            execute format('drop view %s cascade', '{{ target_relation }}');
            execute format('create view %s as %s', '{{ target_relation }}', body);
        end
        $view_replaced$
    {%- endcall %}

    {#- grants stay with a view redefined in place: those the config no longer names go -#}
    {%- set revoke = should_revoke(existing_relation, full_refresh_mode=false) -%}
    {% do apply_grants(target_relation, grant_config, should_revoke=revoke) %}
    {% do persist_docs(target_relation, model) %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
