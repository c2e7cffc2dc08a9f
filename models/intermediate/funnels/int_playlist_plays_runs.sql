{#- Plays in a playlist context with their playlist run. A run starts at the session's first
    play, at a change of context (the core's run_play_number = 1), or at a play the listener
    started (reason_start in var funnel_run_start_reasons: appload, clickrow, playbtn), so two
    listens of one playlist back to back are two runs. Inside a run reason_start is trackdone,
    fwdbtn or backbtn. Both windows read only playlist plays, partitioned by session. Plays
    of an unknown playlist (sources such as Spotify's MSSD give the context type but no id)
    are left out: without the playlist there is no length, so no funnel.
    Incremental by session_date, not a view (the intermediate default): the windows are the
    costly part, and runs never cross sessions, so rebuilding whole session days is exact. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days(), key='play_id')
) }}
{%- set run_start_reasons = var('funnel_run_start_reasons') -%}
{%- set run_start_list = "'" ~ (run_start_reasons | join("', '")) ~ "'" -%}

with plays as (
    select
        play_id,
        session_id,
        user_id,
        context_id as playlist_id,
        played_at,
        session_date,
        session_play_number,
        run_play_number,
        position_in_context,
        reason_start,
        is_shuffle,
        is_skipped
    from {{ ref('int_plays_sessionized') }}
    where
        context_type = 'playlist'
        and context_id is not null
        {% if is_incremental() %}
            {%- set window_start = incremental_window_start() %}
            and session_date >= {{ window_start }}
        {% endif %}
),

run_starts_flagged as (
    select
        *,
        (
            run_play_number = 1
            or coalesce(reason_start in ({{ run_start_list }}), false)
        ) as is_run_start
    from plays
),

runs_numbered as (
    select
        *,
        sum(case when is_run_start then 1 else 0 end) over (
            partition by session_id order by session_play_number rows unbounded preceding
        ) as session_playlist_run_number
    from run_starts_flagged
),

ordinals_added as (
    select
        play_id,
        session_id,
        user_id,
        playlist_id,
        played_at,
        session_date,
        session_play_number,
        session_playlist_run_number,
        row_number() over (
            partition by session_id, session_playlist_run_number order by session_play_number
        ) as run_track_ordinal,
        position_in_context,
        reason_start,
        is_shuffle,
        is_skipped
    from runs_numbered
)

select * from ordinals_added
