{#- A/B monitor: one row per experiment, variant and day with activity of enrolled users
    inside their experiment window (same window rule as fct_experiment_user_metrics:
    sessions starting in [assigned_at, window_ended_at)). A day appears once the variant has
    an active user that day; every enrollment day does (users enroll at a session start). -#}
with user_windows as (
    select
        experiment_id,
        user_id,
        variant,
        assigned_at,
        assigned_date,
        window_ended_at
    from {{ ref('fct_experiment_user_metrics') }}
),

sessions as (
    select
        user_id,
        session_started_at,
        session_date,
        track_count,
        skip_count,
        ms_played
    from {{ ref('fct_sessions') }}
),

sessions_in_window as (
    select
        user_windows.experiment_id,
        user_windows.variant,
        user_windows.user_id,
        sessions.session_date as activity_date,
        sessions.track_count,
        sessions.skip_count,
        sessions.ms_played
    from user_windows
    inner join sessions
        on
            user_windows.user_id = sessions.user_id
            and user_windows.assigned_at <= sessions.session_started_at
            and user_windows.window_ended_at > sessions.session_started_at
),

-- per user first, then per day: a count(distinct) sorted every session in window by its text
-- keys (0.7M at 1M sessions, most of the model's time)
user_activity as (
    select
        experiment_id,
        variant,
        activity_date,
        user_id,
        count(*) as session_count,
        sum(track_count) as play_count,
        sum(skip_count) as skip_count,
        sum(ms_played) as ms_played
    from sessions_in_window
    group by
        experiment_id,
        variant,
        activity_date,
        user_id
),

activity as (
    select
        experiment_id,
        variant,
        activity_date,
        count(*) as active_user_count,
        sum(session_count) as session_count,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count,
        sum(ms_played) as ms_played
    from user_activity
    group by
        experiment_id,
        variant,
        activity_date
),

enrollments as (
    select
        experiment_id,
        variant,
        assigned_date,
        count(*) as new_user_count
    from user_windows
    group by
        experiment_id,
        variant,
        assigned_date
),

enrollments_added as (
    select
        activity.experiment_id,
        activity.variant,
        activity.activity_date,
        activity.active_user_count,
        activity.session_count,
        activity.play_count,
        activity.skip_count,
        activity.ms_played,
        coalesce(enrollments.new_user_count, 0) as new_user_count
    from activity
    left join enrollments
        on
            activity.experiment_id = enrollments.experiment_id
            and activity.variant = enrollments.variant
            and activity.activity_date = enrollments.assigned_date
),

final as (
    select
        {{ surrogate_key(['experiment_id', 'variant', 'activity_date']) }} as experiment_variant_day_id,
        experiment_id,
        variant,
        activity_date,
        cast(new_user_count as {{ dbt.type_bigint() }}) as new_user_count,
        cast(sum(new_user_count) over (
            partition by experiment_id, variant
            order by activity_date
            rows between unbounded preceding and current row
        ) as {{ dbt.type_bigint() }}) as enrolled_user_count,
        cast(active_user_count as {{ dbt.type_bigint() }}) as active_user_count,
        cast(session_count as {{ dbt.type_bigint() }}) as session_count,
        cast(play_count as {{ dbt.type_bigint() }}) as play_count,
        cast(skip_count as {{ dbt.type_bigint() }}) as skip_count,
        cast(skip_count as {{ dbt.type_float() }}) / play_count as skip_rate,
        cast(ms_played as {{ dbt.type_float() }}) / 60000 as listening_minutes
    from enrollments_added
)

select * from final
