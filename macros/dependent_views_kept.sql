{#- dbt swaps a table built whole in for the old one (a --full-refresh, should_full_refresh's
    rebuild of every row): the old one is renamed to its backup, the transaction commits, and
    the backup is dropped with cascade, which took every view over it along (after a backfill
    the marts fct_plays and fct_play_skip_features, over the sessionized plays, were gone until
    the run reached them, or for good when it did not select them). On PostgreSQL the drop of
    a backup first redefines the views over it over the new relation (create or replace view:
    same identity and grants, so the views over those are untouched; the views themselves are
    redefined in place too, view_replaced). A view that no longer fits the new relation (a
    column gone or of another type) is left to the drop, as dbt does, with a notice. dbt's
    relation cache counts those views dropped; a later view model of the run redefines its
    view in place whatever the cache says.

    At the drop, not in the model's transaction: there the two parts of int_plays_flagged,
    swapped at once, each held its own new table while redefining the view over both, and
    deadlocked. After the commit only the backup is held; the redefinitions queue on one
    advisory lock, and the latest reads the view as the one before left it. Spark and DuckDB
    bind views by name. -#}
{% macro postgres__drop_relation(relation) -%}
    {% call statement('drop_relation', auto_begin=False) -%}
        {{ dependent_views_kept(relation) }}
        {{ get_drop_sql(relation) }}
    {%- endcall %}
{% endmacro %}

{% macro dependent_views_kept(relation) %}
    {%- set suffix = '__dbt_backup' -%}
    {%- if not relation.identifier.endswith(suffix) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set swapped_in = relation.identifier[:-(suffix | length)] -%}
    do $dependent_views_kept$
    declare
        dependent record;
    begin
        perform pg_advisory_xact_lock(hashtext('dependent_views_kept'));
        for dependent in
            select distinct
                cast(cast(viewed.oid as regclass) as text) as view_name,
                regexp_replace(pg_get_viewdef(viewed.oid), ';\s*$', '') as definition
            from pg_depend as dependency
            inner join pg_rewrite as view_rule on dependency.objid = view_rule.oid
            inner join pg_class as viewed on view_rule.ev_class = viewed.oid
            where
                dependency.classid = cast('pg_rewrite' as regclass)
                and dependency.refclassid = cast('pg_class' as regclass)
                and dependency.refobjid = to_regclass('{{ relation }}')
                and viewed.oid != dependency.refobjid
        loop
            begin
                execute format(
                    'create or replace view %s as %s', dependent.view_name,
                    replace(dependent.definition, '{{ relation.identifier }}', '{{ swapped_in }}')
                );
            exception when invalid_table_definition or datatype_mismatch or undefined_column then
                raise notice '%: does not fit the new {{ swapped_in }} (%), dropped with the old one',
                    dependent.view_name, sqlerrm;
            end;
        end loop;
    end
    $dependent_views_kept$;
{%- endmacro %}
