{#- Incremental config shared by every model over plays: whole days are rebuilt, from the
    first day touched by a change in the batch registry since the model was last built
    (macros/incremental_window_start.sql). `days_before`: how many days before a changed
    day the model's rebuild may have to start (a session-keyed model: a changed play belongs
    to a session that started up to session_history_days() earlier; the rebuild starts at
    the earliest such session, incremental_session_reach). `lookback_where` limits the
    rows whose newest day starts the late-event lookback.

    The pre-hook clears every day from the first rebuilt day on (a day whose rows were all
    removed must become empty, which neither delete+insert nor a dynamic insert_overwrite
    does), the model's rows are then added (Postgres append, in the same transaction; Spark
    insert_overwrite of day partitions), and the post-hook records the change the model is
    now built up to.

    `history`: names of models whose rows before the first rebuilt day the model reads
    through model_relation, without a dbt dependency (incremental_first_rebuilt_day).

    `key`: a column or a list of columns; on Postgres a unique index on them, built after a
    full build's insert (a contract primary key is checked row by row as the table fills:
    about twice as slow on the 50k bench data) and checked by every incremental insert; with
    not-null tests or constraints it is the model's primary key, and no `unique` data test
    needs to scan the table (at 1M sessions the index on fct_plays.play_id builds in 14 s,
    the `unique` test took 28 s alone). A key of a model whose grain includes the day leads
    with the day: the daily run's new rows then go in at the index's right edge (a key led by
    user_id took a daily run's insert into int_user_track_days_aggregated to 16 s at 1M), and
    it serves the pre-hook's delete of the rebuilt days in place of the day index.

    `indexed`: more columns with an index of their own on Postgres, for readers that filter
    on them.

    `own_sessions`: the model holds sessions itself (the parts of int_plays_sessionized), so
    its first rebuilt day looks for the earliest session a change touches in its own rows
    (incremental_session_reach). Their day index carries ended_at too: that read, and every
    session-keyed model's (twice per model and run), then finds the plays of the sessions
    that end within the gap before a changed day in the index (at 1M sessions 12,000 plays
    in 9 ms, where the day index alone fetched the two days' 960,000 in 0.4 s). -#}
{% macro incremental_by_day(date_column, days_before=0, lookback_where=none, key=none,
                            history=none, indexed=none, own_sessions=false) %}
    {%- do build_serialized(now=true) -%}
    {%- set change_driven = {
        'rebuild_day_column': date_column,
        'rebuild_days_before': days_before,
        'rebuild_own_sessions': own_sessions,
        'rebuild_lookback_where': lookback_where,
        'rebuild_history_models': history or [],
        'pre_hook': ["{{ incremental_clear_days() }}"],
        'post_hook': ["{{ incremental_record_watermark() }}"],
        'on_schema_change': 'fail',
    } -%}
    {% if target.type == 'spark' %}
        {{ return(dict(change_driven, incremental_strategy='insert_overwrite',
                       partition_by=[date_column], file_format='parquet')) }}
    {% endif %}
    {% if target.type == 'duckdb' %}
        {#- DuckDB appends as Postgres does; its zone maps find a day without an index, and
            an index only slows the inserts. -#}
        {{ return(dict(change_driven, incremental_strategy='append')) }}
    {% endif %}
    {%- set key = [key] if key is string else key or [] -%}
    {%- set day_index = [date_column, 'ended_at'] if own_sessions else [date_column] -%}
    {%- set indexes = [] if key[:1] == [date_column] else [{'columns': day_index}] -%}
    {%- for column in indexed or [] -%}
        {%- do indexes.append({'columns': [column]}) -%}
    {%- endfor -%}
    {%- if key -%}
        {%- do indexes.append({'columns': key, 'unique': true}) -%}
    {%- endif -%}
    {{ return(dict(change_driven, incremental_strategy='append', indexes=indexes)) }}
{% endmacro %}
