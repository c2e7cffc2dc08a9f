{#- One row per user with at least one session on or before the as-of day (var
    features_as_of_date, default the last day of data): the engagement features. Every
    input is filtered to sessions started on or before that day. -#}
{{ config(pre_hook="{{ planner_without_nested_loops() }}") }}

with users as (
    select
        user_id,
        tier,
        signed_up_date
    from {{ ref('dim_users') }}
),

activity as (
    select * from {{ ref('int_user_activity_summarised') }}
),

genre_diversity as (
    select * from {{ ref('int_user_genre_diversity') }}
),

runs as (
    select * from {{ ref('int_user_runs_summarised') }}
),

temporal_patterns as (
    select * from {{ ref('int_user_temporal_patterns') }}
),

audio_profiles as (
    select * from {{ ref('int_user_audio_profiles') }}
),

joined as (
    select
        activity.user_id,
        activity.as_of_date,
        users.tier,
        {{ dbt.datediff('users.signed_up_date', 'activity.as_of_date', 'day') }} as days_since_signup,
        -- activity and streaks
        activity.active_day_count,
        activity.active_days_last_28d,
        activity.active_day_rate_28d,
        activity.current_streak_days,
        activity.longest_streak_days,
        activity.streak_count,
        activity.mean_streak_days,
        activity.streak_consistency_rate,
        activity.days_since_first_active,
        activity.days_since_last_active,
        activity.play_count,
        activity.hours_played,
        activity.plays_per_active_day,
        activity.skip_rate,
        -- genre and artist diversity
        genre_diversity.genre_count,
        genre_diversity.genre_entropy,
        genre_diversity.genre_entropy_normalised,
        genre_diversity.top_genre_play_share,
        genre_diversity.artist_count,
        genre_diversity.top_artist_play_share,
        genre_diversity.artist_hhi,
        genre_diversity.distinct_track_count,
        genre_diversity.track_repeat_rate,
        genre_diversity.artist_exploration_ratio,
        genre_diversity.genre_exploration_ratio,
        genre_diversity.artist_exploration_ratio_28d,
        genre_diversity.genre_exploration_ratio_28d,
        -- playlists and contexts
        runs.playlist_run_count,
        runs.playlist_completion_rate,
        activity.playlist_skip_rate,
        runs.mean_playlist_run_length,
        runs.playlist_engagement_score,
        activity.playlist_play_share,
        activity.album_play_share,
        activity.radio_play_share,
        activity.artist_play_share,
        activity.collection_play_share,
        activity.search_play_share,
        activity.other_context_play_share,
        activity.shuffle_play_share,
        activity.editorial_playlist_play_share,
        activity.algorithmic_playlist_play_share,
        activity.user_playlist_play_share,
        -- sessions
        runs.session_count,
        activity.sessions_per_active_day,
        runs.mean_session_duration_seconds,
        runs.median_session_duration_seconds,
        runs.mean_tracks_per_session,
        runs.mean_context_runs_per_session,
        runs.mean_seconds_to_first_skip,
        runs.skip_free_session_rate,
        -- temporal patterns
        temporal_patterns.night_play_share,
        temporal_patterns.morning_play_share,
        temporal_patterns.afternoon_play_share,
        temporal_patterns.evening_play_share,
        temporal_patterns.night_skip_rate,
        temporal_patterns.weekend_play_share,
        temporal_patterns.weekend_ratio,
        temporal_patterns.hour_entropy,
        temporal_patterns.weekday_entropy,
        temporal_patterns.preferred_iso_day_of_week,
        temporal_patterns.peak_month,
        temporal_patterns.monthly_play_cv,
        -- audio preferences
        audio_profiles.mean_energy,
        audio_profiles.energy_variance,
        audio_profiles.mean_valence,
        audio_profiles.valence_variance,
        audio_profiles.mean_danceability,
        audio_profiles.danceability_variance,
        audio_profiles.mean_acousticness,
        audio_profiles.acousticness_variance,
        audio_profiles.mean_tempo_bpm,
        audio_profiles.tempo_bpm_stddev,
        audio_profiles.tempo_preference_bpm,
        audio_profiles.taste_distance_from_catalogue
    from activity
    left join users
        on activity.user_id = users.user_id
    left join genre_diversity
        on activity.user_id = genre_diversity.user_id
    left join runs
        on activity.user_id = runs.user_id
    left join temporal_patterns
        on activity.user_id = temporal_patterns.user_id
    left join audio_profiles
        on activity.user_id = audio_profiles.user_id
)

select * from joined
