{#- One row per user, session day and genre: plays and skips of the genre's tracks in the
    sessions the user started that day, summed from int_user_track_days_aggregated (a genre
    has about a fifth of its rows). The genre history of fct_play_skip_features: a daily run
    sums the active users' genre days instead of all their track days. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day(
        'session_date', days_before=session_history_days(),
        key=['session_date', 'user_id', 'genre']
    )
) }}

with user_track_days as (
    select
        user_id,
        session_date,
        genre,
        play_count,
        skip_count
    from {{ ref('int_user_track_days_aggregated') }}
    {% if is_incremental() %}
        where session_date >= {{ incremental_window_start() }}
    {% endif %}
),

aggregated as (
    select
        user_id,
        session_date,
        genre,
        cast(sum(play_count) as {{ dbt.type_bigint() }}) as play_count,
        cast(sum(skip_count) as {{ dbt.type_bigint() }}) as skip_count
    from user_track_days
    group by
        user_id,
        session_date,
        genre
)

select * from aggregated
