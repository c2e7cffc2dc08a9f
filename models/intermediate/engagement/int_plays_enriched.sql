{#- Every sessionized play with what is known about its track (genre, audio features,
    popularity) and its playlist (type, size), and its hour and weekday on the listener's clock
    (users.timezone; UTC when unknown). The genre rule is dim_tracks' (the artist's primary
    genre, else 'unknown'), repeated here from staging so intermediate models read no marts.

    A table, not a view: five models read every play of it, and as a view each of them ran
    the six joins again. Incremental by session_date as int_plays_sessionized (whole sessions
    are rebuilt); the models below filter it by session_date, which reaches its index. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days(), key='play_id')
) }}

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
        ms_played,
        context_type,
        context_id,
        position_in_context,
        reason_start,
        is_shuffle,
        device,
        is_skipped,
        session_started_at,
        session_date,
        is_session_start,
        session_play_number,
        context_run_number,
        run_play_number
    from {{ ref('int_plays_sessionized') }}
    {% if is_incremental() %}
        where session_date >= {{ incremental_window_start() }}
    {% endif %}
),

tracks as (
    select
        track_id,
        duration_ms,
        popularity
    from {{ ref('stg_spotify__tracks') }}
),

audio_features as (
    select
        track_id,
        danceability,
        energy,
        valence,
        acousticness,
        instrumentalness,
        speechiness,
        liveness,
        loudness_db,
        tempo_bpm
    from {{ ref('stg_spotify__audio_features') }}
),

primary_genres as (
    select
        artist_id,
        max(genre) as genre
    from {{ ref('stg_spotify__artist_genres') }}
    where is_primary_genre
    group by artist_id
),

users as (
    select
        user_id,
        timezone
    from {{ ref('stg_streaming__users') }}
),

playlists as (
    select
        playlist_id,
        playlist_type
    from {{ ref('stg_spotify__playlists') }}
),

playlist_sizes as (
    select
        playlist_id,
        count(*) as playlist_track_count
    from {{ ref('stg_spotify__playlist_tracks') }}
    group by playlist_id
),

joined as (
    select
        plays.*,
        coalesce(primary_genres.genre, 'unknown') as genre,
        tracks.duration_ms as track_duration_ms,
        tracks.popularity as track_popularity,
        audio_features.track_id is not null as has_audio_features,
        audio_features.danceability,
        audio_features.energy,
        audio_features.valence,
        audio_features.acousticness,
        audio_features.instrumentalness,
        audio_features.speechiness,
        audio_features.liveness,
        audio_features.loudness_db,
        audio_features.tempo_bpm,
        playlists.playlist_type,
        playlist_sizes.playlist_track_count,
        {{ hour_of_day(local_timestamp('plays.played_at', 'users.timezone')) }} as hour_of_day,
        {{ iso_day_of_week(local_timestamp('plays.played_at', 'users.timezone')) }}
            as iso_day_of_week,
        {{ hour_of_day(local_timestamp('plays.session_started_at', 'users.timezone')) }}
            as session_start_hour,
        case when plays.is_skipped then 1 else 0 end as skip_flag
    from plays
    left join tracks
        on plays.track_id = tracks.track_id
    left join audio_features
        on plays.track_id = audio_features.track_id
    left join primary_genres
        on plays.artist_id = primary_genres.artist_id
    left join users
        on plays.user_id = users.user_id
    left join playlists
        on
            plays.context_type = 'playlist'
            and plays.context_id = playlists.playlist_id
    left join playlist_sizes
        on
            plays.context_type = 'playlist'
            and plays.context_id = playlist_sizes.playlist_id
)

select * from joined
