{#- First day an incremental run rebuilds, as a SQL date literal (computed once, when the
    model is compiled, so the pre-hook that clears those days cannot change it):

    - the earliest day touched by a change in raw.load_changes recorded after this model's
      watermark (incremental_watermark_name) and up to the run's bound, counting only the
      raw tables the model reads (incremental_source_tables); a change with no day range (a
      dimension table, or a batch without dated rows) touches every day;
    - for a session-keyed model (`rebuild_days_before` above 0, see incremental_by_day): the
      start day of the earliest session that can reach that day, up to that many days
      before it (incremental_session_reach);
    - or, if earlier and var incremental_lookback_days is not 0 (the default), that many
      days before the newest day already built (rows written without a registry entry;
      nothing depends on it being right).

    Every day from there on is rebuilt (a session-keyed model: before the first changed
    day, only the rows of the users whose sessions reach it, incremental_rebuilt_where), so
    anything that depends on an earlier day (a user's running history, a session across
    midnight) is rebuilt too. Nothing changed and
    nothing built: '9999-12-31', an empty rebuild. Not incremental, or the table is empty
    (an unlogged table after a crash holds no rows, whatever the watermark says): '1900-01-01',
    all.

    `rebuild_history_models` (incremental_by_day's `history`): models whose days before the
    first rebuilt day the model reads, by model_relation, not ref, so that its build need
    not wait for theirs. The changes after the oldest of its own watermark and theirs, as
    committed before this invocation started, count as above. Whichever of their builds the
    model's query sees (before this run's, or after), their rows that it does not rebuild
    then hold every change up to the run's bound: a later change touches only days on or
    after it. One of them not built before this invocation: '1900-01-01', the model rebuilds
    all and reads none of them. Their watermarks are read as of the invocation's start, so
    that the pre-hook and the model's query, compiled at different moments, agree on the day
    whatever commits meanwhile; their tables are logged (not emptied by a crash while their
    watermarks remain). -#}
{% macro incremental_window_start() -%}
    cast('{{ incremental_first_rebuilt_day() or "9999-12-31" }}' as date)
{%- endmacro %}


{#- The same day as a 'YYYY-MM-DD' string, or none when nothing is to be rebuilt. -#}
{% macro incremental_first_rebuilt_day() %}
    {{ return(incremental_rebuild_scope()['first_day']) }}
{% endmacro %}


{#- A predicate on the rows an incremental run rebuilds (`column`: the model's day column, or
    an upstream's, as written in the query; `user_column` the same rows' user):

    - every row from the first changed day on (`full_day`, incremental_rebuild_scope);
    - before it, from the first rebuilt day on, only the rows of the users whose sessions
      reach that day (`users`): at 1M sessions 908 users and 30k plays, where the whole day
      before the change holds 261k; the other users' sessions of those days end more than
      session_gap_minutes before the change and no change can touch them.

    `days_earlier`: the users' rows are read that many days earlier still (the sessionizer's
    plays before their sessions, which decide where those sessions start). Not incremental:
    every row. -#}
{% macro incremental_rebuilt_where(column, user_column='user_id', days_earlier=0) %}
    {%- set scope = incremental_rebuild_scope() -%}
    {%- set first_day = "cast('" ~ (scope['first_day'] or '9999-12-31') ~ "' as date)" -%}
    {%- if days_earlier -%}
        {%- set first_day = dbt.dateadd('day', -days_earlier, first_day) -%}
    {%- endif -%}
    {%- if not scope['users'] -%}
        {{ return(column ~ ' >= ' ~ first_day) }}
    {%- endif -%}
    {{ return('(' ~ column ~ " >= cast('" ~ scope['full_day'] ~ "' as date) or (" ~ column
              ~ ' >= ' ~ first_day ~ ' and ' ~ user_column ~ ' in ('
              ~ scope['users'] | join(', ') ~ ')))') }}
{% endmacro %}


{#- What an incremental run rebuilds, as a dict: `first_day`, the first rebuilt day
    ('YYYY-MM-DD', none when nothing is to be rebuilt; above); `full_day`, the day from which
    every row is rebuilt; `users`, the user_ids whose rows are rebuilt from `first_day` on
    (sessions across `full_day`, incremental_session_reach; empty when `first_day` is
    `full_day`). Not on Spark, whose runs overwrite whole day partitions, nor when the
    rebuild reaches the table's oldest day (`rebuild_oldest_column`, else the day column),
    which then is rebuilt whole (should_full_refresh; DuckDB: incremental_clear_days' truncate).

    Read once per rendering context (the model's compile, then its hooks'), kept in the
    context's `model` dict: a model asks for it at every read of a rebuilt relation
    (int_play_histories_counted 10 times a run), and each read of the registry and the
    sessions cost 0.2-0.5 s of the daily run. The hooks' pre-hook reads it before its
    delete runs, so both see the same table. -#}
{% macro incremental_rebuild_scope() %}
    {%- if not execute -%}
        {{ return(incremental_scope_read()) }}
    {%- endif -%}
    {%- if 'incremental_rebuild_scope' not in model -%}
        {#- is_incremental() first: should_full_refresh, which it calls, reads the scope
            when it decides, and the read here would otherwise be a second one -#}
        {%- do is_incremental() -%}
    {%- endif -%}
    {%- if 'incremental_rebuild_scope' not in model -%}
        {%- do model.update({'incremental_rebuild_scope': incremental_scope_read()}) -%}
    {%- endif -%}
    {{ return(model['incremental_rebuild_scope']) }}
{% endmacro %}


{#- incremental_rebuild_scope, read from the registry, the watermarks and the sessions. -#}
{% macro incremental_scope_read() %}
    {%- set everything = {'first_day': '1900-01-01', 'full_day': '1900-01-01', 'users': []} -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(everything) }}
    {%- endif -%}
    {%- set day_column = config.get('rebuild_day_column') -%}
    {%- set days_before = config.get('rebuild_days_before') or 0 -%}
    {%- set where = config.get('rebuild_lookback_where') -%}
    {%- set changes = incremental_registry_relation() -%}
    {%- set state = incremental_state_relation() -%}
    {%- if changes is none or adapter.get_relation(
            database=state.database, schema=state.schema, identifier=state.identifier) is none -%}
        {#- no registry to read: only a full rebuild is safe -#}
        {{ return(everything) }}
    {%- endif -%}
    {%- set tables = incremental_source_tables() -%}
    {%- set own_watermark -%}
        (
            select coalesce(max(change_id), -1) from {{ state }}
            where watermark_name = '{{ incremental_watermark_name() }}'
        )
    {%- endset -%}
    {%- set run_started -%}
        coalesce(
            (select max(recorded_at) from {{ state }} where watermark_name = 'run {{ invocation_id }}'),
            {{ dbt.current_timestamp() }}
        )
    {%- endset -%}
    {#- -2: never built before this invocation -#}
    {%- set watermarks = [own_watermark] -%}
    {%- for name in config.get('rebuild_history_models') or [] -%}
        {%- do watermarks.append(
            '(select coalesce(max(change_id), -2) from ' ~ state ~ " where watermark_name = '"
            ~ name ~ "' and recorded_at < " ~ run_started ~ ')') -%}
    {%- endfor -%}
    {%- set built_since = watermarks[0] if watermarks | length == 1
                          else 'least(' ~ watermarks | join(', ') ~ ')' -%}
    {%- set first_changed -%}
        (
            select min(coalesce(min_day, cast('1900-01-01' as date)))
            from {{ changes }}
            where
                change_id > {{ built_since }}
                and change_id <= {{ incremental_run_bound() }}
                and table_name in ('{{ tables | join("', '") }}')
        )
    {%- endset -%}
    {%- set newest_built -%}
        (select max({{ day_column }}) from {{ this }}{{ ' where ' ~ where if where }})
    {%- endset -%}
    {%- set reach = incremental_session_reach(first_changed, days_before) -%}
    {%- set first_day = reach['first_day'] -%}
    {%- set full_day = first_changed -%}
    {%- if var('incremental_lookback_days') > 0 -%}
        {%- set lookback = dbt.dateadd('day', -var('incremental_lookback_days'), newest_built) -%}
        {%- set first_day = 'least(' ~ first_day ~ ', ' ~ lookback ~ ')' -%}
        {%- set full_day = 'least(' ~ full_day ~ ', ' ~ lookback ~ ')' -%}
    {%- endif -%}
    {%- set query -%}
        select
            cast({{ first_day }} as {{ dbt.type_string() }}) as first_day,
            (select count(*) from (select 1 as one from {{ this }} limit 1) as probe) as row_count,
            {{ built_since }} as built_since,
            cast({{ full_day }} as {{ dbt.type_string() }}) as full_day,
            reach.users
        from ({{ reach['query'] }}) as reach
    {%- endset -%}
    {%- set result = run_query(query).rows[0] -%}
    {%- if result[1] == 0 or result[2] == -2 -%}
        {{ return(everything) }}
    {%- endif -%}
    {%- set first_day = result[0][:10] if result[0] else none -%}
    {%- set full_day = result[3][:10] if result[3] else none -%}
    {%- if first_day is none or first_day == full_day or not result[4] or target.type == 'spark'
            or incremental_reaches_oldest(
                first_day, config.get('rebuild_oldest_column') or day_column) -%}
        {{ return({'first_day': first_day, 'full_day': first_day, 'users': []}) }}
    {%- endif -%}
    {{ return({'first_day': first_day, 'full_day': full_day,
               'users': result[4].split(',') | map('int') | sort | list}) }}
{% endmacro %}


{#- What a change from `first_changed` (SQL date) on reaches of a session-keyed model's earlier
    sessions, as a dict: `query`, a one-row select of `users` (the user_ids of those sessions,
    joined by commas; null for none) and `first_day` (their earliest start day, null for
    none), both from one read of the sessions; `first_day`, the model's first rebuilt day as
    a SQL expression over that row (`reach.first_day`).

    The sessions: those that started no more than `days_before` days earlier and whose plays
    end no more than session_gap_minutes before that day begins. Plays that start on or after
    that day can join only such a session (a play joins the session whose latest end is
    within the gap of its start), and a session that lost plays from that day on keeps its
    earlier plays, its start and that latest end: so every session a change can touch starts
    on or after their first day (else `first_changed` itself), and belongs to one of their
    users or starts on or after `first_changed`, before the change is built (each part of
    int_plays_sessionized reads its own rows: `rebuild_own_sessions`; reading the other's,
    which it holds locked while it is rebuilt, deadlocked the two) and after (the models
    downstream read its new rows). Usually one day before the change (sessions across
    midnight), not `days_before`. Without the sessions table (not built yet): no users,
    `days_before` before. A model keyed on the play's day (`days_before` 0): no users,
    `first_changed`, with no read. -#}
{% macro incremental_session_reach(first_changed, days_before) %}
    {%- set nothing = 'select cast(null as date) as first_day, cast(null as '
                      ~ dbt.type_string() ~ ') as users' -%}
    {%- if days_before == 0 -%}
        {{ return({'query': nothing, 'first_day': first_changed}) }}
    {%- endif -%}
    {%- set sessions = this if config.get('rebuild_own_sessions')
                       else model_relation('int_plays_sessionized') -%}
    {%- if sessions is none -%}
        {{ return({'query': nothing,
                   'first_day': dbt.dateadd('day', -days_before, first_changed)}) }}
    {%- endif -%}
    {%- set day_start = 'cast(' ~ first_changed ~ ' as ' ~ dbt.type_timestamp() ~ ')' -%}
    {%- set query -%}
        select
            min(first_day) as first_day,
            {{ dbt.listagg('cast(user_id as ' ~ dbt.type_string() ~ ')', "','") }} as users
        from (
            select
                user_id,
                min(session_date) as first_day
            from {{ sessions }}
            where
                session_date >= {{ dbt.dateadd('day', -days_before, first_changed) }}
                and session_date < {{ first_changed }}
                and ended_at
                >= {{ add_milliseconds(day_start, -var('session_gap_minutes') * 60000) }}
            group by user_id
        ) as reaching
    {%- endset -%}
    {{ return({'query': query, 'first_day': 'coalesce(reach.first_day, ' ~ first_changed ~ ')'}) }}
{% endmacro %}
