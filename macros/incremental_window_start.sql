{#- First day an incremental run rebuilds, as a SQL date literal (computed once, when the
    model is compiled, so the pre-hook that clears those days cannot change it):

    - the earliest day touched by a change in raw.load_changes recorded after this model's
      watermark (incremental_watermark_name) and up to the run's bound, counting only the
      raw tables the model reads (incremental_source_tables); a change with no day range (a
      dimension table, or a batch without dated rows) touches every day;
    - for a session-keyed model (`rebuild_days_before` above 0, see incremental_by_day): the
      start day of the earliest session that can reach that day, up to that many days
      before it (incremental_session_start_day);
    - or, if earlier and var incremental_lookback_days is not 0 (the default), that many
      days before the newest day already built (rows written without a registry entry;
      nothing depends on it being right).

    Every day from there on is rebuilt, so anything that depends on an earlier day (a
    user's running history, a session across midnight) is rebuilt too. Nothing changed and
    nothing built: '9999-12-31', an empty rebuild. Not incremental, or the table is empty
    (an unlogged table after a crash holds no rows, whatever the watermark says): '1900-01-01',
    all.

    `rebuild_history_models` (incremental_by_day's `history`): models whose days before the
    first rebuilt day the model reads, by model_relation, not ref, so that its build need
    not wait for theirs. The changes after the oldest of its own watermark and theirs, as
    committed before this invocation started, count as above. Whichever of their builds the
    model's query sees (before this run's, or after), their rows before the first rebuilt day
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
    {%- if not execute or not is_incremental() -%}
        {{ return('1900-01-01') }}
    {%- endif -%}
    {%- set day_column = config.get('rebuild_day_column') -%}
    {%- set days_before = config.get('rebuild_days_before') or 0 -%}
    {%- set where = config.get('rebuild_lookback_where') -%}
    {%- set changes = incremental_registry_relation() -%}
    {%- set state = incremental_state_relation() -%}
    {%- if changes is none or adapter.get_relation(
            database=state.database, schema=state.schema, identifier=state.identifier) is none -%}
        {#- no registry to read: only a full rebuild is safe -#}
        {{ return('1900-01-01') }}
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
    {%- set first_day -%}
        {{ incremental_session_start_day(first_changed, days_before) }}
    {%- endset -%}
    {%- if var('incremental_lookback_days') > 0 -%}
        {%- set first_day -%}
            least(
                {{ first_day }},
                {{ dbt.dateadd('day', -var('incremental_lookback_days'), newest_built) }}
            )
        {%- endset -%}
    {%- endif -%}
    {%- set query -%}
        select
            cast({{ first_day }} as {{ dbt.type_string() }}) as first_day,
            (select count(*) from (select 1 as one from {{ this }} limit 1) as probe) as row_count,
            {{ built_since }} as built_since
    {%- endset -%}
    {%- set result = run_query(query).rows[0] -%}
    {%- if result[1] == 0 or result[2] == -2 -%}
        {{ return('1900-01-01') }}
    {%- endif -%}
    {{ return(result[0][:10] if result[0] else none) }}
{% endmacro %}


{#- A session-keyed model's first rebuilt day for a change from `first_changed` (SQL date) on:
    the start day of the earliest session, no more than `days_before` days earlier, whose
    plays end no more than session_gap_minutes before that day begins, or `first_changed`
    itself. Plays that start on or after that day can join only such a session (a play joins
    the session whose latest end is within the gap of its start), and a session that lost
    plays from that day on keeps its earlier plays, its start and that latest end: so every
    session a change can touch starts on or after this day, before the change is built
    (each part of int_plays_sessionized reads its own rows: `rebuild_own_sessions`; reading
    the other's, which it holds locked while it is rebuilt, deadlocked the two) and after
    (the models downstream read its new rows). Usually one day before the change (sessions
    across midnight), not `days_before`. Without the sessions table (not built yet):
    `days_before` before. A model keyed on the play's day (`days_before` 0):
    `first_changed`, with no query. -#}
{% macro incremental_session_start_day(first_changed, days_before) %}
    {%- if days_before == 0 -%}{{ return(first_changed) }}{%- endif -%}
    {%- set fallback = dbt.dateadd('day', -days_before, first_changed) -%}
    {%- set sessions = this if config.get('rebuild_own_sessions')
                       else model_relation('int_plays_sessionized') -%}
    {%- if sessions is none -%}{{ return(fallback) }}{%- endif -%}
    {%- set day_start = 'cast(' ~ first_changed ~ ' as ' ~ dbt.type_timestamp() ~ ')' -%}
    {%- set query -%}
        coalesce(
            (
                select min(session_date) from {{ sessions }}
                where
                    session_date >= {{ fallback }}
                    and session_date < {{ first_changed }}
                    and ended_at
                    >= {{ add_milliseconds(day_start, -var('session_gap_minutes') * 60000) }}
            ),
            {{ first_changed }}
        )
    {%- endset -%}
    {{ return(query) }}
{% endmacro %}
