{#- One run at a time builds a model (PostgreSQL): an advisory lock on the model, held by the
    model's connection until dbt closes it at the end of the model, its backup dropped. Two
    runs at once (a scheduled run that overran, an engineer's run beside it) interleaved: the
    second run's delete of the rebuilt days missed the rows the first had just inserted and
    its insert added them again (a unique index failed the run; fct_sessions, which has none,
    could take sessions twice), or its hooks found the days already built while its select,
    compiled before, added them again. Now the second run waits for the model, then builds it
    from what the first left: what to rebuild is read after the lock, since an incremental
    model takes it as its config is rendered (incremental_by_day, incremental_by_key: `now`),
    before any read of its scope; every other model in its first pre-hook. Views too: two
    concurrent redefinitions of one view can fail ("tuple concurrently updated"). Spark and
    DuckDB have no such lock (DuckDB allows one writing process anyway). -#}
{% macro build_serialized(now=false) %}
    {%- if not execute or target.type != 'postgres' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set lock -%}
        select pg_advisory_lock(hashtext('dbt build {{ this }}'))
    {%- endset -%}
    {%- if now -%}
        {%- do run_query(lock) -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(lock) }}
{% endmacro %}
