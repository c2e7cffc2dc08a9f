{#- One row per valid play: the skip label and every feature known the moment before the
    play starts. History features count ALL of the user's earlier plays (ordered by
    played_at, then play_id): an earlier play of the same session ended before this one
    started, and earlier sessions ended more than session_gap_minutes before.

    Incremental by session_date, like int_plays_sessionized, so every session is rebuilt
    whole. History = the running totals of the user-day and user-track-day tables before the
    first rebuilt day, plus windows over the rebuilt plays (frames end at `1 preceding`). A
    full refresh uses the same code with a window starting in 1900, so the history part is
    empty and the windows cover everything: the two paths are one. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days())
) }}
{%- if is_incremental() -%}
    {%- set window_start = incremental_window_start() -%}
{%- else -%}
    {%- set window_start = "cast('1900-01-01' as date)" -%}
{%- endif %}

with plays as (
    select
        play_id,
        session_id,
        user_id,
        track_id,
        artist_id,
        genre,
        played_at,
        played_date,
        session_date,
        is_session_start,
        session_play_number,
        context_run_number,
        run_play_number,
        context_type,
        playlist_type,
        position_in_context,
        reason_start,
        is_shuffle,
        device,
        hour_of_day,
        iso_day_of_week,
        session_start_hour,
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
        skip_flag,
        is_skipped
    from {{ ref('int_plays_enriched') }}
    where session_date >= {{ window_start }}
),

users as (
    select
        user_id,
        tier,
        signed_up_date
    from {{ ref('dim_users') }}
),

user_days as (
    select
        user_id,
        session_date,
        play_count,
        skip_count,
        session_count,
        audio_play_count,
        energy_sum
    from {{ ref('int_user_days_engagement') }}
    where session_date < {{ window_start }}
),

user_track_days as (
    select
        user_id,
        session_date,
        track_id,
        artist_id,
        genre,
        play_count,
        skip_count
    from {{ ref('int_user_track_days_aggregated') }}
    where session_date < {{ window_start }}
),

window_users as (
    select distinct user_id from plays
),

user_history as (
    select
        user_days.user_id,
        sum(user_days.play_count) as play_count,
        sum(user_days.skip_count) as skip_count,
        sum(user_days.session_count) as session_count,
        sum(user_days.audio_play_count) as audio_play_count,
        sum(user_days.energy_sum) as energy_sum
    from user_days
    inner join window_users
        on user_days.user_id = window_users.user_id
    group by user_days.user_id
),

track_history_rows as (
    select user_track_days.*
    from user_track_days
    inner join window_users
        on user_track_days.user_id = window_users.user_id
),

track_history as (
    select
        user_id,
        track_id,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count
    from track_history_rows
    group by
        user_id,
        track_id
),

artist_history as (
    select
        user_id,
        artist_id,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count
    from track_history_rows
    group by
        user_id,
        artist_id
),

genre_history as (
    select
        user_id,
        genre,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count
    from track_history_rows
    group by
        user_id,
        genre
),

-- only the columns the windows read: sorting narrow rows is several times faster
window_inputs as (
    select
        play_id,
        user_id,
        track_id,
        artist_id,
        genre,
        played_at,
        is_session_start,
        skip_flag,
        has_audio_features,
        energy
    from plays
),

-- running totals over the rebuilt plays, each frame ending at the previous play
window_history_added as (
    select
        play_id,
        user_id,
        played_at,
        is_session_start,
        row_number() over (
            partition by user_id order by played_at, play_id
        ) - 1 as window_prior_play_count,
        coalesce(sum(skip_flag) over (
            partition by user_id order by played_at, play_id
            rows between unbounded preceding and 1 preceding
        ), 0) as window_prior_skip_count,
        coalesce(sum(case when has_audio_features then 1 else 0 end) over (
            partition by user_id order by played_at, play_id
            rows between unbounded preceding and 1 preceding
        ), 0) as window_prior_audio_play_count,
        coalesce(sum(energy) over (
            partition by user_id order by played_at, play_id
            rows between unbounded preceding and 1 preceding
        ), 0) as window_prior_energy_sum,
        sum(case when is_session_start then 1 else 0 end) over (
            partition by user_id order by played_at, play_id rows unbounded preceding
        ) as window_session_start_count,
        lag(skip_flag) over (
            partition by user_id order by played_at, play_id
        ) as previous_skip_flag,
        row_number() over (
            partition by user_id, track_id order by played_at, play_id
        ) - 1 as window_prior_track_play_count,
        coalesce(sum(skip_flag) over (
            partition by user_id, track_id order by played_at, play_id
            rows between unbounded preceding and 1 preceding
        ), 0) as window_prior_track_skip_count,
        row_number() over (
            partition by user_id, artist_id order by played_at, play_id
        ) - 1 as window_prior_artist_play_count,
        coalesce(sum(skip_flag) over (
            partition by user_id, artist_id order by played_at, play_id
            rows between unbounded preceding and 1 preceding
        ), 0) as window_prior_artist_skip_count,
        row_number() over (
            partition by user_id, genre order by played_at, play_id
        ) - 1 as window_prior_genre_play_count,
        coalesce(sum(skip_flag) over (
            partition by user_id, genre order by played_at, play_id
            rows between unbounded preceding and 1 preceding
        ), 0) as window_prior_genre_skip_count
    from window_inputs
),

-- skips before the session: the running skip count at the latest session start (running
-- counts never decrease, so the running maximum is the value at the latest start)
session_base_added as (
    select
        play_id,
        window_prior_play_count,
        window_prior_skip_count,
        window_prior_audio_play_count,
        window_prior_energy_sum,
        window_session_start_count,
        previous_skip_flag,
        window_prior_track_play_count,
        window_prior_track_skip_count,
        window_prior_artist_play_count,
        window_prior_artist_skip_count,
        window_prior_genre_play_count,
        window_prior_genre_skip_count,
        max(case when is_session_start then window_prior_skip_count end) over (
            partition by user_id order by played_at, play_id rows unbounded preceding
        ) as window_skip_count_at_session_start
    from window_history_added
),

history_totalled as (
    select
        plays.*,
        session_base_added.previous_skip_flag,
        users.tier,
        users.signed_up_date,
        coalesce(user_history.play_count, 0) + session_base_added.window_prior_play_count
            as user_prior_play_count,
        coalesce(user_history.skip_count, 0) + session_base_added.window_prior_skip_count
            as user_prior_skip_count,
        coalesce(user_history.session_count, 0) + session_base_added.window_session_start_count - 1
            as user_prior_session_count,
        coalesce(user_history.audio_play_count, 0) + session_base_added.window_prior_audio_play_count
            as user_prior_audio_play_count,
        coalesce(user_history.energy_sum, 0) + session_base_added.window_prior_energy_sum
            as user_prior_energy_sum,
        coalesce(track_history.play_count, 0) + session_base_added.window_prior_track_play_count
            as user_prior_track_play_count,
        coalesce(track_history.skip_count, 0) + session_base_added.window_prior_track_skip_count
            as user_prior_track_skip_count,
        coalesce(artist_history.play_count, 0) + session_base_added.window_prior_artist_play_count
            as user_prior_artist_play_count,
        coalesce(artist_history.skip_count, 0) + session_base_added.window_prior_artist_skip_count
            as user_prior_artist_skip_count,
        coalesce(genre_history.play_count, 0) + session_base_added.window_prior_genre_play_count
            as user_prior_genre_play_count,
        coalesce(genre_history.skip_count, 0) + session_base_added.window_prior_genre_skip_count
            as user_prior_genre_skip_count,
        session_base_added.window_prior_skip_count - session_base_added.window_skip_count_at_session_start
            as session_prior_skip_count
    from plays
    inner join session_base_added
        on plays.play_id = session_base_added.play_id
    left join users
        on plays.user_id = users.user_id
    left join user_history
        on plays.user_id = user_history.user_id
    left join track_history
        on
            plays.user_id = track_history.user_id
            and plays.track_id = track_history.track_id
    left join artist_history
        on
            plays.user_id = artist_history.user_id
            and plays.artist_id = artist_history.artist_id
    left join genre_history
        on
            plays.user_id = genre_history.user_id
            and plays.genre = genre_history.genre
),

final as (
    select
        play_id,
        session_id,
        user_id,
        track_id,
        played_at,
        played_date,
        session_date,
        is_skipped,
        -- the track
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
        -- context and position
        context_type,
        playlist_type,
        is_shuffle,
        position_in_context,
        reason_start,
        session_play_number,
        context_run_number,
        run_play_number,
        device,
        tier,
        hour_of_day,
        session_start_hour,
        iso_day_of_week,
        iso_day_of_week >= 6 as is_weekend,
        {{ dbt.datediff('signed_up_date', 'played_date', 'day') }} as days_since_signup,
        -- the user's history before this play
        user_prior_play_count,
        user_prior_skip_count,
        {{ feature_safe_divide('user_prior_skip_count', 'user_prior_play_count') }} as user_prior_skip_rate,
        user_prior_session_count,
        user_prior_track_play_count,
        {{ feature_safe_divide('user_prior_track_skip_count', 'user_prior_track_play_count') }}
            as user_prior_track_skip_rate,
        user_prior_artist_play_count,
        {{ feature_safe_divide('user_prior_artist_skip_count', 'user_prior_artist_play_count') }}
            as user_prior_artist_skip_rate,
        user_prior_artist_play_count = 0 as is_new_artist,
        user_prior_genre_play_count,
        {{ feature_safe_divide('user_prior_genre_play_count', 'user_prior_play_count') }}
            as user_prior_genre_play_share,
        {{ feature_safe_divide('user_prior_genre_skip_count', 'user_prior_genre_play_count') }}
            as user_prior_genre_skip_rate,
        {{ feature_safe_divide('user_prior_energy_sum', 'user_prior_audio_play_count') }}
            as user_prior_mean_energy,
        abs(energy - {{ feature_safe_divide('user_prior_energy_sum', 'user_prior_audio_play_count') }})
            as energy_distance_from_prior_mean,
        session_prior_skip_count,
        {{ feature_safe_divide('session_prior_skip_count', 'session_play_number - 1') }}
            as session_prior_skip_rate,
        case when session_play_number > 1 then previous_skip_flag = 1 end as is_previous_play_skipped
    from history_totalled
)

select * from final
