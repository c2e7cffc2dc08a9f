{#- Churn signals per user as of the as-of day (int_retention_observation_window). Two
    trailing windows of var churn_trend_window_days days each: "recent" ends on the as-of
    day, "earlier" is the window just before it. A user is churned when they played before
    but not during the last var churn_inactivity_days days; engagement is declining when
    recent sessions fall below var churn_decline_ratio times the earlier sessions (only for
    users observed over both whole windows). -#}
{%- set inactivity_days = var('churn_inactivity_days') | int -%}
{%- set trend_days = var('churn_trend_window_days') | int -%}
{%- set decline_ratio = var('churn_decline_ratio') | float -%}

with users as (
    select
        user_id,
        signed_up_at,
        signed_up_date,
        tier,
        country_code
    from {{ ref('dim_users') }}
),

user_days as (
    select
        user_id,
        activity_date,
        play_count
    from {{ ref('int_user_days_active') }}
),

sessions as (
    select
        user_id,
        session_date
    from {{ ref('fct_sessions') }}
),

observation_window as (
    select
        observation_start_date,
        as_of_date
    from {{ ref('int_retention_observation_window') }}
),

windows as (
    select
        observation_start_date,
        as_of_date,
        cast({{ dbt.dateadd('day', 1 - trend_days, 'as_of_date') }} as date)
            as recent_window_start_date,
        cast({{ dbt.dateadd('day', 1 - 2 * trend_days, 'as_of_date') }} as date)
            as earlier_window_start_date,
        cast({{ dbt.dateadd('day', 1 - inactivity_days, 'as_of_date') }} as date)
            as inactivity_window_start_date
    from observation_window
),

days_summarised as (
    select
        user_days.user_id,
        min(user_days.activity_date) as first_active_date,
        max(user_days.activity_date) as last_active_date,
        sum(case
            when user_days.activity_date >= windows.recent_window_start_date then 1 else 0
        end) as recent_active_day_count,
        sum(case
            when user_days.activity_date >= windows.recent_window_start_date
                then user_days.play_count
            else 0
        end) as recent_play_count
    from user_days
    cross join windows
    where user_days.activity_date <= windows.as_of_date
    group by user_days.user_id
),

sessions_summarised as (
    select
        sessions.user_id,
        sum(case
            when sessions.session_date >= windows.recent_window_start_date then 1 else 0
        end) as recent_session_count,
        sum(case
            when
                sessions.session_date >= windows.earlier_window_start_date
                and sessions.session_date < windows.recent_window_start_date
                then 1
            else 0
        end) as earlier_session_count
    from sessions
    cross join windows
    where
        sessions.session_date <= windows.as_of_date
        and sessions.session_date >= windows.earlier_window_start_date
    group by sessions.user_id
),

joined as (
    select
        users.user_id,
        users.tier,
        users.country_code,
        users.signed_up_date,
        windows.as_of_date,
        windows.recent_window_start_date,
        windows.earlier_window_start_date,
        windows.inactivity_window_start_date,
        days_summarised.first_active_date,
        days_summarised.last_active_date,
        {{ dbt.datediff('users.signed_up_date', 'windows.as_of_date', 'day') }} as days_since_signup,
        {{ dbt.datediff('days_summarised.last_active_date', 'windows.as_of_date', 'day') }}
            as days_since_last_play,
        -- both trend windows lie inside the data and after signup
        (
            users.signed_up_at
            < cast(windows.earlier_window_start_date as {{ dbt.type_timestamp() }})
            and windows.observation_start_date <= windows.earlier_window_start_date
        ) as is_trend_observed,
        coalesce(sessions_summarised.recent_session_count, 0) as recent_session_count,
        coalesce(sessions_summarised.earlier_session_count, 0) as earlier_session_count,
        coalesce(days_summarised.recent_active_day_count, 0) as recent_active_day_count,
        coalesce(days_summarised.recent_play_count, 0) as recent_play_count
    from users
    cross join windows
    left join days_summarised
        on users.user_id = days_summarised.user_id
    left join sessions_summarised
        on users.user_id = sessions_summarised.user_id
    where users.signed_up_date <= windows.as_of_date
),

final as (
    select
        user_id,
        tier,
        country_code,
        signed_up_date,
        as_of_date,
        cast(days_since_signup as {{ dbt.type_int() }}) as days_since_signup,
        first_active_date,
        last_active_date,
        cast(days_since_last_play as {{ dbt.type_int() }}) as days_since_last_play,
        cast(recent_session_count as {{ dbt.type_bigint() }}) as recent_session_count,
        cast(earlier_session_count as {{ dbt.type_bigint() }}) as earlier_session_count,
        cast(recent_active_day_count as {{ dbt.type_bigint() }}) as recent_active_day_count,
        cast(recent_play_count as {{ dbt.type_bigint() }}) as recent_play_count,
        case
            when is_trend_observed and earlier_session_count > 0
                then cast(recent_session_count as {{ dbt.type_float() }}) / earlier_session_count
        end as session_trend_ratio,
        is_trend_observed,
        coalesce(
            is_trend_observed
            and earlier_session_count > 0
            and recent_session_count < {{ decline_ratio }} * earlier_session_count,
            false
        ) as is_declining_engagement,
        last_active_date is not null
        and last_active_date < inactivity_window_start_date as is_churned,
        case
            when last_active_date is null then 'never_active'
            when last_active_date < inactivity_window_start_date then 'churned'
            else 'active'
        end as churn_status
    from joined
)

select * from final
