{{ config(materialized='incremental', **incremental_by_day('played_date', key='play_id')) }}
{%- set window_start = incremental_window_start() %}

with plays as (
    select * from {{ ref('int_plays_sessionized') }}
    {% if is_incremental() %}
        -- the session day bound adds nothing (a play's session starts at most that long
        -- before it) but lets the rebuild read int_plays_sessionized's index on it
        where
            played_date >= {{ window_start }}
            and session_date >= {{ dbt.dateadd('day', -session_history_days(), window_start) }}
    {% endif %}
),

final as (
    select
        play_id,
        session_id,
        user_id,
        track_id,
        artist_id,
        played_at,
        played_date,
        ended_at,
        hour_of_day,
        iso_day_of_week,
        is_local_time,
        ms_played,
        context_type,
        context_id,
        position_in_context,
        reason_start,
        reason_end,
        is_shuffle,
        device,
        is_skipped,
        source_skipped,
        source_skip_label,
        session_started_at,
        session_date,
        is_session_start,
        session_play_number,
        context_run_number,
        run_play_number,
        gap_seconds
    from plays
)

select * from final
