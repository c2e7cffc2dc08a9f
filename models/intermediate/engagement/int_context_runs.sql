{#- One row per context run: consecutive plays of one context (type and id) inside a
    session. A playlist run is completed when it played as many tracks as the playlist holds:
    unshuffled runs start at position 1, so that is reaching the last position; shuffled runs
    play the playlist in a random order, so that is reaching the last track of that order.
    Null for other contexts and for playlists of unknown size. fct_sessions sums these runs
    (a tenth as many rows as plays) rather than the plays. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days())
) }}

with plays as (
    select
        session_id,
        user_id,
        session_started_at,
        session_date,
        context_run_number,
        context_type,
        context_id,
        playlist_type,
        playlist_track_count,
        is_shuffle,
        played_at,
        ended_at,
        ms_played,
        device,
        run_play_number,
        skip_flag
    from {{ ref('int_plays_sessionized') }}
    {% if is_incremental() %}
        where {{ incremental_rebuilt_where('session_date') }}
    {% endif %}
),

aggregated as (
    select
        session_id,
        context_run_number,
        user_id,
        session_started_at,
        session_date,
        max(context_type) as context_type,
        max(context_id) as context_id,
        max(playlist_type) as playlist_type,
        max(playlist_track_count) as playlist_track_count,
        max(case when is_shuffle then 1 else 0 end) = 1 as is_shuffle,
        min(played_at) as run_started_at,
        max(ended_at) as run_ended_at,
        min(case when skip_flag = 1 then played_at end) as first_skipped_at,
        count(*) as play_count,
        sum(skip_flag) as skip_count,
        cast(sum(ms_played) as {{ dbt.type_bigint() }}) as ms_played,
        max(case when run_play_number = 1 then device end) as device
    from plays
    group by
        session_id,
        context_run_number,
        user_id,
        session_started_at,
        session_date
),

completion_flagged as (
    select
        {{ surrogate_key(['session_id', 'context_run_number']) }} as context_run_id,
        *,
        case
            when context_type = 'playlist' and playlist_track_count is not null
                then play_count >= playlist_track_count
        end as is_completed
    from aggregated
)

select * from completion_flagged
