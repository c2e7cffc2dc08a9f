-- User engagement by tier: active users, sessions and plays per active user and week,
-- session length and skip rate, over the whole data (valid plays only).
with sessions as (
    select
        user_id,
        session_date,
        duration_seconds,
        track_count,
        skip_count
    from {{ ref('fct_sessions') }}
),

users as (
    select
        user_id,
        tier
    from {{ ref('dim_users') }}
),

span as (
    select
        cast(
            {{ dbt.datediff('min(session_date)', 'max(session_date)', 'day') }} + 1
            as {{ dbt.type_float() }}
        ) / 7 as week_count
    from sessions
),

per_tier as (
    select
        users.tier,
        count(distinct sessions.user_id) as active_user_count,
        count(*) as session_count,
        sum(sessions.track_count) as play_count,
        sum(sessions.skip_count) as skip_count,
        avg(sessions.duration_seconds) as avg_session_seconds,
        avg(cast(sessions.track_count as {{ dbt.type_float() }})) as avg_tracks_per_session
    from sessions
    inner join users
        on sessions.user_id = users.user_id
    group by users.tier
),

final as (
    select
        per_tier.tier,
        per_tier.active_user_count,
        cast(per_tier.session_count as {{ dbt.type_float() }})
        / per_tier.active_user_count / span.week_count as sessions_per_user_week,
        cast(per_tier.play_count as {{ dbt.type_float() }})
        / per_tier.active_user_count / span.week_count as plays_per_user_week,
        per_tier.avg_session_seconds / 60 as avg_session_minutes,
        per_tier.avg_tracks_per_session,
        cast(per_tier.skip_count as {{ dbt.type_float() }}) / per_tier.play_count as skip_rate
    from per_tier
    cross join span
)

select * from final
order by tier
