{#- One row per session: the targets duration_seconds and track_count, and only what is
    known when the session starts: its first play (hour, weekday, device, context, playlist
    type, shuffle), the user's tier, and the user's earlier sessions (window frames end at
    `1 preceding`; earlier sessions ended before this one started). -#}
with sessions as (
    select
        session_id,
        user_id,
        session_started_at,
        session_ended_at,
        session_date,
        duration_seconds,
        track_count,
        skip_count,
        first_context_type,
        device
    from {{ ref('fct_sessions') }}
),

first_runs as (
    select
        session_id,
        playlist_type,
        is_shuffle
    from {{ ref('int_context_runs') }}
    where context_run_number = 1
),

users as (
    select
        user_id,
        tier,
        signed_up_date,
        timezone
    from {{ ref('dim_users') }}
),

history_added as (
    select
        *,
        row_number() over (
            partition by user_id order by session_started_at, session_id
        ) - 1 as user_prior_session_count,
        avg(duration_seconds) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_mean_duration_seconds,
        avg(cast(track_count as {{ dbt.type_float() }})) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_mean_track_count,
        sum(skip_count) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_skip_count,
        sum(track_count) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_play_count,
        lag(duration_seconds) over (
            partition by user_id order by session_started_at, session_id
        ) as previous_session_duration_seconds,
        lag(track_count) over (
            partition by user_id order by session_started_at, session_id
        ) as previous_session_track_count,
        lag(session_ended_at) over (
            partition by user_id order by session_started_at, session_id
        ) as previous_session_ended_at,
        min(session_date) over (
            partition by user_id order by session_started_at, session_id rows unbounded preceding
        ) as first_session_date
    from sessions
),

final as (
    select
        history_added.session_id,
        history_added.user_id,
        history_added.session_started_at,
        history_added.session_date,
        -- targets
        history_added.duration_seconds,
        history_added.track_count,
        -- known at the start
        users.tier,
        {{ hour_of_day(local_timestamp('history_added.session_started_at', 'users.timezone')) }}
            as start_hour,
        {{ iso_day_of_week(local_timestamp('history_added.session_started_at', 'users.timezone')) }}
            as iso_day_of_week,
        {{ iso_day_of_week(local_timestamp('history_added.session_started_at', 'users.timezone')) }}
        >= 6 as is_weekend,
        history_added.device,
        history_added.first_context_type,
        first_runs.playlist_type as first_playlist_type,
        first_runs.is_shuffle as is_first_run_shuffled,
        {{ dbt.datediff('users.signed_up_date', 'history_added.session_date', 'day') }} as days_since_signup,
        {{ dbt.datediff('history_added.first_session_date', 'history_added.session_date', 'day') }}
            as days_since_first_session,
        history_added.user_prior_session_count,
        history_added.user_prior_mean_duration_seconds,
        history_added.user_prior_mean_track_count,
        {{ feature_safe_divide(
            'history_added.user_prior_skip_count', 'history_added.user_prior_play_count') }}
            as user_prior_skip_rate,
        history_added.previous_session_duration_seconds,
        history_added.previous_session_track_count,
        cast(
            {{ epoch_milliseconds('history_added.session_started_at') }}
            - {{ epoch_milliseconds('history_added.previous_session_ended_at') }}
            as {{ dbt.type_float() }}
        ) / 3600000 as hours_since_previous_session
    from history_added
    left join first_runs
        on history_added.session_id = first_runs.session_id
    left join users
        on history_added.user_id = users.user_id
)

select * from final
