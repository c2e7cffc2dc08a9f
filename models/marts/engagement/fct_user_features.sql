{#- One row per user with at least one session on or before the as-of day (var
    features_as_of_date, default the last day of data): the engagement features. Every
    input is filtered to sessions started on or before that day. Every column is cast to
    its contract type, so the three engines agree (DuckDB's integer sums are HUGEINT, its
    datediff a BIGINT). -#}
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
        cast(activity.user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(activity.as_of_date as date) as as_of_date,
        users.tier,
        cast(
            {{ dbt.datediff('users.signed_up_date', 'activity.as_of_date', 'day') }}
            as {{ dbt.type_bigint() }}
        ) as days_since_signup,
        -- activity and streaks
        cast(activity.active_day_count as {{ dbt.type_bigint() }}) as active_day_count,
        cast(activity.active_days_last_28d as {{ dbt.type_bigint() }}) as active_days_last_28d,
        cast(activity.active_day_rate_28d as {{ dbt.type_float() }}) as active_day_rate_28d,
        cast(activity.current_streak_days as {{ dbt.type_bigint() }}) as current_streak_days,
        cast(activity.longest_streak_days as {{ dbt.type_bigint() }}) as longest_streak_days,
        cast(activity.streak_count as {{ dbt.type_bigint() }}) as streak_count,
        cast(activity.mean_streak_days as {{ dbt.type_float() }}) as mean_streak_days,
        cast(activity.streak_consistency_rate as {{ dbt.type_float() }}) as streak_consistency_rate,
        cast(activity.days_since_first_active as {{ dbt.type_bigint() }}) as days_since_first_active,
        cast(activity.days_since_last_active as {{ dbt.type_bigint() }}) as days_since_last_active,
        cast(activity.play_count as {{ dbt.type_bigint() }}) as play_count,
        cast(activity.hours_played as {{ dbt.type_float() }}) as hours_played,
        cast(activity.plays_per_active_day as {{ dbt.type_float() }}) as plays_per_active_day,
        cast(activity.skip_rate as {{ dbt.type_float() }}) as skip_rate,
        -- genre and artist diversity
        cast(genre_diversity.genre_count as {{ dbt.type_bigint() }}) as genre_count,
        cast(genre_diversity.genre_entropy as {{ dbt.type_float() }}) as genre_entropy,
        cast(genre_diversity.genre_entropy_normalised as {{ dbt.type_float() }}) as genre_entropy_normalised,
        cast(genre_diversity.top_genre_play_share as {{ dbt.type_float() }}) as top_genre_play_share,
        cast(genre_diversity.artist_count as {{ dbt.type_bigint() }}) as artist_count,
        cast(genre_diversity.top_artist_play_share as {{ dbt.type_float() }}) as top_artist_play_share,
        cast(genre_diversity.artist_hhi as {{ dbt.type_float() }}) as artist_hhi,
        cast(genre_diversity.distinct_track_count as {{ dbt.type_bigint() }}) as distinct_track_count,
        cast(genre_diversity.track_repeat_rate as {{ dbt.type_float() }}) as track_repeat_rate,
        cast(genre_diversity.artist_exploration_ratio as {{ dbt.type_float() }}) as artist_exploration_ratio,
        cast(genre_diversity.genre_exploration_ratio as {{ dbt.type_float() }}) as genre_exploration_ratio,
        cast(genre_diversity.artist_exploration_ratio_28d as {{ dbt.type_float() }})
            as artist_exploration_ratio_28d,
        cast(genre_diversity.genre_exploration_ratio_28d as {{ dbt.type_float() }})
            as genre_exploration_ratio_28d,
        -- playlists and contexts
        cast(runs.playlist_run_count as {{ dbt.type_bigint() }}) as playlist_run_count,
        cast(runs.playlist_completion_rate as {{ dbt.type_float() }}) as playlist_completion_rate,
        cast(activity.playlist_skip_rate as {{ dbt.type_float() }}) as playlist_skip_rate,
        cast(runs.mean_playlist_run_length as {{ dbt.type_float() }}) as mean_playlist_run_length,
        cast(runs.playlist_engagement_score as {{ dbt.type_float() }}) as playlist_engagement_score,
        cast(activity.playlist_play_share as {{ dbt.type_float() }}) as playlist_play_share,
        cast(activity.album_play_share as {{ dbt.type_float() }}) as album_play_share,
        cast(activity.radio_play_share as {{ dbt.type_float() }}) as radio_play_share,
        cast(activity.artist_play_share as {{ dbt.type_float() }}) as artist_play_share,
        cast(activity.collection_play_share as {{ dbt.type_float() }}) as collection_play_share,
        cast(activity.search_play_share as {{ dbt.type_float() }}) as search_play_share,
        cast(activity.other_context_play_share as {{ dbt.type_float() }}) as other_context_play_share,
        cast(activity.shuffle_play_share as {{ dbt.type_float() }}) as shuffle_play_share,
        cast(activity.editorial_playlist_play_share as {{ dbt.type_float() }})
            as editorial_playlist_play_share,
        cast(activity.algorithmic_playlist_play_share as {{ dbt.type_float() }})
            as algorithmic_playlist_play_share,
        cast(activity.user_playlist_play_share as {{ dbt.type_float() }}) as user_playlist_play_share,
        -- sessions
        cast(runs.session_count as {{ dbt.type_bigint() }}) as session_count,
        cast(activity.sessions_per_active_day as {{ dbt.type_float() }}) as sessions_per_active_day,
        cast(runs.mean_session_duration_seconds as {{ dbt.type_float() }}) as mean_session_duration_seconds,
        cast(runs.median_session_duration_seconds as {{ dbt.type_float() }})
            as median_session_duration_seconds,
        cast(runs.mean_tracks_per_session as {{ dbt.type_float() }}) as mean_tracks_per_session,
        cast(runs.mean_context_runs_per_session as {{ dbt.type_float() }}) as mean_context_runs_per_session,
        cast(runs.mean_seconds_to_first_skip as {{ dbt.type_float() }}) as mean_seconds_to_first_skip,
        cast(runs.skip_free_session_rate as {{ dbt.type_float() }}) as skip_free_session_rate,
        -- temporal patterns
        cast(temporal_patterns.night_play_share as {{ dbt.type_float() }}) as night_play_share,
        cast(temporal_patterns.morning_play_share as {{ dbt.type_float() }}) as morning_play_share,
        cast(temporal_patterns.afternoon_play_share as {{ dbt.type_float() }}) as afternoon_play_share,
        cast(temporal_patterns.evening_play_share as {{ dbt.type_float() }}) as evening_play_share,
        cast(temporal_patterns.night_skip_rate as {{ dbt.type_float() }}) as night_skip_rate,
        cast(temporal_patterns.weekend_play_share as {{ dbt.type_float() }}) as weekend_play_share,
        cast(temporal_patterns.weekend_ratio as {{ dbt.type_float() }}) as weekend_ratio,
        cast(temporal_patterns.hour_entropy as {{ dbt.type_float() }}) as hour_entropy,
        cast(temporal_patterns.weekday_entropy as {{ dbt.type_float() }}) as weekday_entropy,
        cast(temporal_patterns.preferred_iso_day_of_week as {{ dbt.type_bigint() }})
            as preferred_iso_day_of_week,
        cast(temporal_patterns.peak_month as {{ dbt.type_bigint() }}) as peak_month,
        cast(temporal_patterns.monthly_play_cv as {{ dbt.type_float() }}) as monthly_play_cv,
        -- audio preferences
        cast(audio_profiles.mean_energy as {{ dbt.type_float() }}) as mean_energy,
        cast(audio_profiles.energy_variance as {{ dbt.type_float() }}) as energy_variance,
        cast(audio_profiles.mean_valence as {{ dbt.type_float() }}) as mean_valence,
        cast(audio_profiles.valence_variance as {{ dbt.type_float() }}) as valence_variance,
        cast(audio_profiles.mean_danceability as {{ dbt.type_float() }}) as mean_danceability,
        cast(audio_profiles.danceability_variance as {{ dbt.type_float() }}) as danceability_variance,
        cast(audio_profiles.mean_acousticness as {{ dbt.type_float() }}) as mean_acousticness,
        cast(audio_profiles.acousticness_variance as {{ dbt.type_float() }}) as acousticness_variance,
        cast(audio_profiles.mean_tempo_bpm as {{ dbt.type_float() }}) as mean_tempo_bpm,
        cast(audio_profiles.tempo_bpm_stddev as {{ dbt.type_float() }}) as tempo_bpm_stddev,
        cast(audio_profiles.tempo_preference_bpm as {{ dbt.type_float() }}) as tempo_preference_bpm,
        cast(audio_profiles.taste_distance_from_catalogue as {{ dbt.type_float() }})
            as taste_distance_from_catalogue
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
