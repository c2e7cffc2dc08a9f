{#- One row per valid play: the skip label and every feature known the moment before the
    play starts (the inputs of the skip model: var skip_model_features in dbt_project.yml
    lists the ones it may use). A view: the play's own columns (track, context, position,
    time, the session so far) are int_plays_sessionized's, the listener's tier and history
    int_play_histories_counted's, both keyed by play_id with a unique index. As a table it
    was a third copy of every play, written on the full build's longest path.

    A left join: a query that reads only the play's columns (training's count of plays per
    day, the oracle's labels) then never touches the history (PostgreSQL drops a left join
    to a unique key nothing reads from: at 1M sessions 4 s instead of 18), and a play
    without its history row would show with null history, not vanish (the has_row_for_each
    test of int_play_histories_counted fails on it). -#}
{{ config(materialized='view') }}

with plays as (
    select
        play_id,
        session_id,
        user_id,
        track_id,
        played_at,
        played_date,
        session_date,
        is_skipped,
        genre,
        has_audio_features,
        energy,
        valence,
        danceability,
        acousticness,
        instrumentalness,
        speechiness,
        liveness,
        loudness_db,
        tempo_bpm,
        track_duration_ms,
        track_popularity,
        context_type,
        playlist_type,
        is_shuffle,
        position_in_context,
        reason_start,
        session_play_number,
        context_run_number,
        run_play_number,
        device,
        hour_of_day,
        session_start_hour,
        iso_day_of_week,
        session_prior_skip_count,
        is_previous_play_skipped
    from {{ ref('int_plays_sessionized') }}
),

histories as (
    select * from {{ ref('int_play_histories_counted') }}
),

final as (
    select
        plays.play_id,
        plays.session_id,
        plays.user_id,
        plays.track_id,
        plays.played_at,
        plays.played_date,
        plays.session_date,
        plays.is_skipped,
        -- the track
        plays.genre,
        plays.has_audio_features,
        plays.energy,
        plays.valence,
        plays.danceability,
        plays.acousticness,
        plays.instrumentalness,
        plays.speechiness,
        plays.liveness,
        plays.loudness_db,
        plays.tempo_bpm,
        plays.track_duration_ms,
        plays.track_popularity,
        -- context and position
        plays.context_type,
        plays.playlist_type,
        plays.is_shuffle,
        plays.position_in_context,
        plays.reason_start,
        plays.session_play_number,
        plays.context_run_number,
        plays.run_play_number,
        plays.device,
        histories.tier,
        plays.hour_of_day,
        plays.session_start_hour,
        plays.iso_day_of_week,
        plays.iso_day_of_week >= 6 as is_weekend,
        histories.days_since_signup,
        -- the user's history before this play
        histories.user_prior_play_count,
        histories.user_prior_skip_count,
        histories.user_prior_skip_rate,
        histories.user_prior_session_count,
        histories.user_prior_track_play_count,
        histories.user_prior_track_skip_rate,
        histories.user_prior_artist_play_count,
        histories.user_prior_artist_skip_rate,
        histories.is_new_artist,
        histories.user_prior_genre_play_count,
        histories.user_prior_genre_play_share,
        histories.user_prior_genre_skip_rate,
        histories.user_prior_top_genre_play_count,
        histories.is_prior_top_genre,
        histories.user_prior_mean_energy,
        histories.energy_distance_from_prior_mean,
        histories.user_prior_kept_mean_energy,
        histories.user_prior_skipped_mean_energy,
        plays.session_prior_skip_count,
        {{ feature_safe_divide('plays.session_prior_skip_count', 'plays.session_play_number - 1') }}
            as session_prior_skip_rate,
        plays.is_previous_play_skipped
    from plays
    left join histories
        on plays.play_id = histories.play_id
)

select * from final
