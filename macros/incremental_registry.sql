{#- The batch registry's change log (written by the loader, docs/incremental.md), or none
    when this warehouse has none. -#}
{% macro incremental_registry_relation() %}
    {{ return(adapter.get_relation(database=incremental_database(), schema='raw',
                                   identifier='load_changes')) }}
{% endmacro %}


{#- Where incremental models record how far they are built: one row per build of a model
    (watermark_name = the model's name, change_id = the newest raw.load_changes row the
    build includes) and one per dbt invocation ('run ' || invocation_id: the newest change
    when the invocation started, the bound of every model it builds, so a load that commits
    while dbt runs is left whole to the next run). -#}
{% macro incremental_state_relation() %}
    {{ return(api.Relation.create(database=incremental_database(), schema='intermediate',
                                  identifier='incremental_watermarks', type='table')) }}
{% endmacro %}


{#- Spark relations carry no database (dbt-spark refuses one other than the schema). -#}
{% macro incremental_database() %}
    {{ return(none if target.type == 'spark' else target.database) }}
{% endmacro %}


{% macro incremental_watermark_name() %}
    {{ return(model.name) }}
{% endmacro %}


{#- This invocation's bound: the newest change recorded by on-run-start, or (a command that
    runs no hooks, e.g. compile) the newest change now. -#}
{% macro incremental_run_bound() -%}
    coalesce(
        (
            select max(change_id) from {{ incremental_state_relation() }}
            where watermark_name = 'run {{ invocation_id }}'
        ),
        (select max(change_id) from {{ incremental_registry_relation() }}),
        -1
    )
{%- endmacro %}


{#- on-run-start: create the watermark table once and record this invocation's bound. -#}
{% macro incremental_run_start() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set state = incremental_state_relation() -%}
    {%- do create_schema(state.without_identifier()) -%}
    {%- set changes = incremental_registry_relation() -%}
    {%- call statement('incremental_watermarks') -%}
        create table if not exists {{ state }} (
            watermark_name {{ dbt.type_string() }},
            change_id {{ dbt.type_bigint() }},
            recorded_at {{ dbt.type_timestamp() }},
            first_rebuilt_day date
        ){{ ' using parquet' if target.type == 'spark' }}
    {%- endcall -%}
    {%- call statement('incremental_run_bound') -%}
        insert into {{ state }}
        select
            'run {{ invocation_id }}',
            {% if changes is none %}cast(-1 as {{ dbt.type_bigint() }}){% else %}
            coalesce((select max(change_id) from {{ changes }}), -1){% endif %},
            {{ dbt.current_timestamp() }},
            cast(null as date)
    {%- endcall -%}
    {%- if target.type != 'spark' -%}{%- do adapter.commit() -%}{%- endif -%}
    {{ return('') }}
{% endmacro %}


{#- post-hook: the model is built up to the run's bound (a full build too). -#}
{% macro incremental_record_watermark() -%}
    insert into {{ incremental_state_relation() }}
    select
        '{{ incremental_watermark_name() }}',
        {{ incremental_run_bound() }},
        {{ dbt.current_timestamp() }},
        cast(null as date)
{%- endmacro %}


{#- The first day the model's latest build rebuilt (1900-01-01: a full build), recorded by
    the pre-hook before it clears the days; data tests of incremental models test only the
    days from there on (get_where_subquery). -#}
{% macro incremental_record_rebuilt_day(first_day) -%}
    insert into {{ incremental_state_relation() }}
    select
        'rebuilt {{ incremental_watermark_name() }}',
        cast(null as {{ dbt.type_bigint() }}),
        {{ dbt.current_timestamp() }},
        cast('{{ first_day or "9999-12-31" }}' as date)
{%- endmacro %}


{#- The raw tables (source identifiers) upstream of the model being built: only their
    changes concern it. -#}
{% macro incremental_source_tables() %}
    {%- set ns = namespace(todo=[model.unique_id], seen=[], tables=[]) -%}
    {%- for _ in range(graph.nodes | length + 1) if ns.todo -%}
        {%- set uid = ns.todo.pop() -%}
        {%- if uid not in ns.seen -%}
            {%- do ns.seen.append(uid) -%}
            {%- if uid in graph.sources -%}
                {%- set source = graph.sources[uid] -%}
                {%- if source.schema == 'raw' -%}
                    {%- do ns.tables.append(source.identifier) -%}
                {%- endif -%}
            {%- elif uid in graph.nodes -%}
                {%- do ns.todo.extend(graph.nodes[uid].depends_on.nodes) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(ns.tables | unique | sort) }}
{% endmacro %}


{#- pre-hook: empty every day from the first rebuilt day on, so a day whose rows were all
    removed ends up empty too. -#}
{% macro incremental_clear_days() %}
    {{ return(adapter.dispatch('incremental_clear_days')()) }}
{% endmacro %}

{% macro default__incremental_clear_days() %}
    {%- if not execute -%}{{ return('select 1') }}{%- endif -%}
    {%- set first_day = incremental_first_rebuilt_day() -%}
    {%- set recorded = incremental_record_rebuilt_day(first_day) -%}
    {%- if first_day is none or not is_incremental() -%}{{ return(recorded) }}{%- endif -%}
    {{ return('delete from ' ~ this ~ ' where ' ~ config.get('rebuild_day_column')
              ~ " >= cast('" ~ first_day ~ "' as date);\n" ~ recorded) }}
{% endmacro %}

{#- Spark drops the day partitions: insert_overwrite replaces only the days it writes. -#}
{% macro spark__incremental_clear_days() %}
    {%- if not execute -%}{{ return('select 1') }}{%- endif -%}
    {%- set first_day = incremental_first_rebuilt_day() -%}
    {#- one statement per hook on Spark: the record goes first, before the drop -#}
    {%- do run_query(incremental_record_rebuilt_day(first_day)) -%}
    {%- if first_day is none or not is_incremental() -%}{{ return('select 1') }}{%- endif -%}
    {%- set day_column = config.get('rebuild_day_column') -%}
    {%- set stale = [] -%}
    {%- for row in run_query('show partitions ' ~ this) -%}
        {%- set day = row[0].split('=')[1] -%}
        {%- if day >= first_day -%}
            {%- do stale.append("partition (" ~ day_column ~ " = '" ~ day ~ "')") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not stale -%}{{ return('select 1') }}{%- endif -%}
    {{ return('alter table ' ~ this ~ ' drop if exists ' ~ stale | join(', ')) }}
{% endmacro %}


{#- Data tests of an incremental model test only the days its latest build rebuilt (what
    changed); a full build records 1900-01-01, so it tests everything, and
    `--vars '{test_all_days: true}'` tests every day after any build. Other models'
    tests, and a test's own `where`, behave as dbt's default. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- set tested = graph.nodes.get(model.attached_node) if execute and model.attached_node -%}
    {%- if tested and tested.config.materialized == 'incremental'
            and tested.config.get('rebuild_day_column') and not var('test_all_days', false) -%}
        {%- set since -%}
            {{ tested.config.rebuild_day_column }} >= coalesce((
                select max(first_rebuilt_day) from {{ incremental_state_relation() }}
                where watermark_name = 'rebuilt {{ tested.name }}' and recorded_at = (
                    select max(recorded_at) from {{ incremental_state_relation() }}
                    where watermark_name = 'rebuilt {{ tested.name }}'
                )
            ), cast('1900-01-01' as date))
        {%- endset -%}
        {%- set where = '(' ~ where ~ ') and ' ~ since if where else since -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
