{#- One row per experiment and enrolled user: the user's metrics over the experiment window
    [assigned_at, window_ended_at) and over the pre-period of the same length just before
    assigned_at (the CUPED covariate). A session belongs to a window when it starts inside it,
    with all its plays: the generator's planted effects follow the same rule.

    window_ended_at = the earlier of the experiment's end and the end of the observed data
    (the day after the last session day), so a running experiment is read as far as data go.
    Retention: active again (a session starting) in the 24 hours from
    experiment_retention_days days after assigned_at; null when the window ends before that
    24-hour span does. Its pre-period value mirrors it before assigned_at, null when the data
    do not reach back that far. -#}
{%- set retention_days = var('experiment_retention_days') -%}

with assignments as (
    select
        experiment_assignment_id,
        experiment_id,
        user_id,
        variant,
        assigned_at,
        assigned_date
    from {{ ref('stg_experiments__experiment_assignments') }}
),

experiments as (
    select
        experiment_id,
        ended_at
    from {{ ref('stg_experiments__experiments') }}
),

variants as (
    select
        experiment_id,
        variant,
        is_control
    from {{ ref('stg_experiments__experiment_variants') }}
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

observed as (
    select
        cast(min(session_date) as {{ dbt.type_timestamp() }}) as data_started_at,
        cast({{ dbt.dateadd('day', 1, 'max(session_date)') }} as {{ dbt.type_timestamp() }})
            as data_ended_at
    from sessions
),

windows as (
    select
        assignments.experiment_assignment_id,
        assignments.experiment_id,
        assignments.user_id,
        assignments.variant,
        coalesce(variants.is_control, assignments.variant = 'control') as is_control,
        assignments.assigned_at,
        assignments.assigned_date,
        observed.data_started_at,
        case
            when experiments.ended_at < observed.data_ended_at then experiments.ended_at
            else observed.data_ended_at
        end as window_ended_at
    from assignments
    inner join experiments
        on assignments.experiment_id = experiments.experiment_id
    left join variants
        on
            assignments.experiment_id = variants.experiment_id
            and assignments.variant = variants.variant
    cross join observed
),

window_lengths as (
    select
        *,
        case
            when window_ended_at > assigned_at
                then {{ epoch_milliseconds('window_ended_at') }} - {{ epoch_milliseconds('assigned_at') }}
            else 0
        end as window_ms
    from windows
),

periods as (
    select
        *,
        {{ add_milliseconds('assigned_at', '-window_ms') }} as pre_period_started_at,
        {{ dbt.dateadd('day', retention_days, 'assigned_at') }} as retention_started_at,
        {{ dbt.dateadd('day', retention_days + 1, 'assigned_at') }} as retention_ended_at,
        {{ dbt.dateadd('day', -(retention_days + 1), 'assigned_at') }} as pre_retention_started_at,
        {{ dbt.dateadd('day', -retention_days, 'assigned_at') }} as pre_retention_ended_at
    from window_lengths
),

sessions_in_periods as (
    select
        periods.experiment_assignment_id,
        sessions.track_count,
        sessions.skip_count,
        sessions.ms_played,
        sessions.session_started_at >= periods.assigned_at as is_in_window,
        (
            sessions.session_started_at >= periods.retention_started_at
            and sessions.session_started_at < periods.retention_ended_at
        ) as is_in_retention_span,
        (
            sessions.session_started_at >= periods.pre_retention_started_at
            and sessions.session_started_at < periods.pre_retention_ended_at
        ) as is_in_pre_retention_span
    from periods
    inner join sessions
        on
            periods.user_id = sessions.user_id
            and periods.pre_period_started_at <= sessions.session_started_at
            and periods.window_ended_at > sessions.session_started_at
),

aggregated as (
    select
        experiment_assignment_id,
        sum(case when is_in_window then 1 else 0 end) as session_count,
        sum(case when is_in_window then track_count else 0 end) as play_count,
        sum(case when is_in_window then skip_count else 0 end) as skip_count,
        sum(case when is_in_window then ms_played else 0 end) as ms_played,
        max(case when is_in_retention_span then 1 else 0 end) as retention_session_flag,
        sum(case when is_in_window then 0 else 1 end) as pre_session_count,
        sum(case when is_in_window then 0 else track_count end) as pre_play_count,
        sum(case when is_in_window then 0 else skip_count end) as pre_skip_count,
        sum(case when is_in_window then 0 else ms_played end) as pre_ms_played,
        max(case when is_in_pre_retention_span then 1 else 0 end) as pre_retention_session_flag
    from sessions_in_periods
    group by experiment_assignment_id
),

counts_filled as (
    select
        periods.*,
        cast(coalesce(aggregated.session_count, 0) as {{ dbt.type_bigint() }}) as session_count,
        cast(coalesce(aggregated.play_count, 0) as {{ dbt.type_bigint() }}) as play_count,
        cast(coalesce(aggregated.skip_count, 0) as {{ dbt.type_bigint() }}) as skip_count,
        cast(coalesce(aggregated.ms_played, 0) as {{ dbt.type_bigint() }}) as ms_played,
        coalesce(aggregated.retention_session_flag, 0) as retention_session_flag,
        cast(coalesce(aggregated.pre_session_count, 0) as {{ dbt.type_bigint() }})
            as pre_session_count,
        cast(coalesce(aggregated.pre_play_count, 0) as {{ dbt.type_bigint() }}) as pre_play_count,
        cast(coalesce(aggregated.pre_skip_count, 0) as {{ dbt.type_bigint() }}) as pre_skip_count,
        cast(coalesce(aggregated.pre_ms_played, 0) as {{ dbt.type_bigint() }}) as pre_ms_played,
        coalesce(aggregated.pre_retention_session_flag, 0) as pre_retention_session_flag
    from periods
    left join aggregated
        on periods.experiment_assignment_id = aggregated.experiment_assignment_id
),

final as (
    select
        experiment_assignment_id,
        experiment_id,
        user_id,
        variant,
        is_control,
        assigned_at,
        assigned_date,
        window_ended_at,
        cast(window_ms as {{ dbt.type_float() }}) / 86400000 as window_days,
        pre_period_started_at,
        pre_period_started_at >= data_started_at as has_full_pre_period,
        cast({{ retention_days }} as integer) as retention_days,
        session_count,
        play_count,
        cast(ms_played as {{ dbt.type_float() }}) / 60000 as listening_minutes,
        skip_count,
        play_count - skip_count as listen_through_count,
        case
            when play_count > 0 then cast(skip_count as {{ dbt.type_float() }}) / play_count
        end as skip_rate,
        case
            when retention_ended_at <= window_ended_at then retention_session_flag = 1
        end as is_retained,
        pre_session_count,
        pre_play_count,
        cast(pre_ms_played as {{ dbt.type_float() }}) / 60000 as pre_listening_minutes,
        pre_skip_count,
        pre_play_count - pre_skip_count as pre_listen_through_count,
        case
            when pre_play_count > 0
                then cast(pre_skip_count as {{ dbt.type_float() }}) / pre_play_count
        end as pre_skip_rate,
        case
            when pre_retention_started_at >= data_started_at then pre_retention_session_flag = 1
        end as pre_is_retained
    from counts_filled
)

select * from final
