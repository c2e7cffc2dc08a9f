{#- A view: int_plays_sessionized (the union of its two parts) holds these plays with every
    check of this mart (the parts' contract constraints and unique keys), so a table here was
    a second copy, written by every build. -#}
{{ config(materialized='view') }}

with plays as (
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
    from {{ ref('int_plays_sessionized') }}
)

select * from plays
