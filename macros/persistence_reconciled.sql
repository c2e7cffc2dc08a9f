{#- Pre-hook (PostgreSQL): an incremental table built before its `unlogged` config changed is
    altered to match, once. dbt applies `unlogged` only when it creates a table; without this
    a day table that fct_play_skip_features reads through incremental_history, built unlogged
    by an older version of the project, would stay unlogged, and a crash could empty it while
    its watermark says built. Nothing when they already match (no lock taken). -#}
{% macro persistence_reconciled() %}
    {%- if not execute or target.type != 'postgres' or not is_incremental() -%}
        {{ return('') }}
    {%- endif -%}
    {%- set query -%}
        select relpersistence from pg_class where oid = to_regclass('{{ this }}')
    {%- endset -%}
    {%- set wanted = 'u' if config.get('unlogged') else 'p' -%}
    {%- if run_query(query).rows[0][0] == wanted -%}
        {{ return('') }}
    {%- endif -%}
    {{ return('alter table ' ~ this ~ ' set ' ~ ('unlogged' if wanted == 'u' else 'logged')) }}
{% endmacro %}
