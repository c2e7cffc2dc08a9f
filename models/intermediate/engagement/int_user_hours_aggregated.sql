{#- One row per user, session day, play day and hour of day (UTC) with plays: the basis of
    the temporal features (hour, part of day, weekday and month of the play itself). -#}
{{ config(
    materialized='incremental',
    **incremental_by_day(
        'session_date', days_before=session_history_days(),
        key=['session_date', 'user_id', 'played_date', 'hour_of_day']
    )
) }}

with plays as (
    select
        user_id,
        session_date,
        played_date,
        hour_of_day,
        iso_day_of_week,
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
        played_date,
        hour_of_day,
        iso_day_of_week,
        count(*) as play_count,
        sum(skip_flag) as skip_count
    from plays
    group by
        user_id,
        session_date,
        played_date,
        hour_of_day,
        iso_day_of_week
)

select * from aggregated
