{#- play_id is the key of every play model downstream: the unique index (incremental_by_day)
    makes Postgres check the deduplication of every build, as it writes. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('played_date', lookback_where='not is_future', key='play_id')
) }}

with plays as (
    select * from {{ ref('stg_streaming__listening_events') }}
    {% if is_incremental() %}
        where played_date >= {{ incremental_window_start() }}
    {% endif %}
),

users as (
    select user_id from {{ ref('stg_streaming__users') }}
),

tracks as (
    select
        track_id,
        artist_id
    from {{ ref('stg_spotify__tracks') }}
),

references_checked as (
    select
        plays.*,
        tracks.artist_id,
        users.user_id is null as is_unknown_user,
        tracks.track_id is null as is_unknown_track
    from plays
    left join users
        on plays.user_id = users.user_id
    left join tracks
        on plays.track_id = tracks.track_id
),

validated as (
    select
        *,
        (
            not has_negative_ms_played
            and not has_overlong_ms_played
            and not is_future
            and not is_unknown_user
            and not is_unknown_track
        ) as is_valid
    from references_checked
)

select * from validated
