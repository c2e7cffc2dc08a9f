-- Per-user metrics are consistent: listen-throughs plus skips are the plays, the skip rate
-- is null exactly when there are no plays, retention is defined only when the window covers
-- its span, and the in-window totals per experiment equal the daily monitor's.
with user_metrics as (
    select
        experiment_assignment_id,
        experiment_id,
        assigned_at,
        window_ended_at,
        retention_days,
        play_count,
        skip_count,
        listen_through_count,
        skip_rate,
        is_retained
    from {{ ref('fct_experiment_user_metrics') }}
),

daily as (
    select
        experiment_id,
        play_count,
        skip_count
    from {{ ref('fct_experiment_daily') }}
),

inconsistent_users as (
    select
        experiment_id,
        'user ' || experiment_assignment_id as failure
    from user_metrics
    where
        listen_through_count + skip_count <> play_count
        or (skip_rate is null) <> (play_count = 0)
        or (is_retained is null) <> (
            {{ dbt.dateadd('day', 'retention_days + 1', 'assigned_at') }} > window_ended_at
        )
),

user_totals as (
    select
        experiment_id,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count
    from user_metrics
    group by experiment_id
),

daily_totals as (
    select
        experiment_id,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count
    from daily
    group by experiment_id
),

mismatched_totals as (
    select
        user_totals.experiment_id,
        'daily totals' as failure
    from user_totals
    left join daily_totals
        on user_totals.experiment_id = daily_totals.experiment_id
    where
        coalesce(daily_totals.play_count, 0) <> user_totals.play_count
        or coalesce(daily_totals.skip_count, 0) <> user_totals.skip_count
)

select * from inconsistent_users
union all
select * from mismatched_totals
