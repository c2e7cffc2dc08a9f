{#- One row per user, session day and genre: plays and skips of the genre's tracks in the
    sessions the user started that day (about a fifth of the rows of the track days). The
    genre history of fct_play_skip_features: a daily run sums the active users' genre days
    instead of all their track days. Counted from the plays, not summed from the track
    days: it then builds beside them, not after, and fct_play_skip_features, which waits
    for both, starts one model earlier. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day(
        'session_date', days_before=session_history_days(),
        key=['session_date', 'user_id', 'genre']
    )
) }}

with plays as (
    select
        user_id,
        session_date,
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
        genre,
        count(*) as play_count,
        cast(sum(skip_flag) as {{ dbt.type_bigint() }}) as skip_count
    from plays
    group by
        user_id,
        session_date,
        genre
)

select * from aggregated
