{#- One row per user, session day and track: plays and skips of the track in the sessions
    the user started that day. The history behind per-track, per-artist and per-genre
    features (the track's artist and genre ride along). -#}
{{ config(
    materialized='incremental',
    **incremental_by_day(
        'session_date', days_before=session_history_days(),
        key=['session_date', 'user_id', 'track_id']
    )
) }}
{#- dbt appends the hooks of each config call -#}
{{ config(pre_hook="{{ planner_sorted_aggregate() }}") }}

with plays as (
    select
        user_id,
        session_date,
        track_id,
        artist_id,
        genre,
        skip_flag
    from {{ ref('int_plays_sessionized') }}
    {% if is_incremental() %}
        where {{ incremental_rebuilt_where('session_date') }}
    {% endif %}
),

aggregated as (
    select
        user_id,
        session_date,
        track_id,
        artist_id,
        genre,
        count(*) as play_count,
        sum(skip_flag) as skip_count
    from plays
    group by
        user_id,
        session_date,
        track_id,
        artist_id,
        genre
)

select * from aggregated
