{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days())
) }}

with plays as (
    select
        session_id,
        user_id,
        session_started_at,
        session_date,
        session_play_number,
        ended_at,
        ms_played,
        is_skipped,
        context_type,
        device
    from {{ ref('int_plays_sessionized') }}
    {% if is_incremental() %}
        where session_date >= {{ incremental_window_start() }}
    {% endif %}
),

-- Two hash aggregates instead of one over all plays sorted by session: count(distinct
-- context_type) would make the database sort every play; one group per session and context
-- type first, then per session, counts each (non-null) context type once. Every other
-- figure is a sum, count or max, which add up across the two steps exactly.
session_contexts_aggregated as (
    select
        session_id,
        user_id,
        session_started_at,
        session_date,
        context_type,
        max(ended_at) as session_ended_at,
        count(*) as track_count,
        sum(case when is_skipped then 1 else 0 end) as skip_count,
        sum(ms_played) as ms_played,
        max(case when session_play_number = 1 then context_type end) as first_context_type,
        max(case when session_play_number = 1 then device end) as device
    from plays
    group by
        session_id,
        user_id,
        session_started_at,
        session_date,
        context_type
),

aggregated as (
    select
        session_id,
        user_id,
        session_started_at,
        session_date,
        max(session_ended_at) as session_ended_at,
        cast(sum(track_count) as {{ dbt.type_bigint() }}) as track_count,
        cast(sum(skip_count) as {{ dbt.type_bigint() }}) as skip_count,
        cast(sum(ms_played) as {{ dbt.type_bigint() }}) as ms_played,
        count(context_type) as distinct_context_type_count,
        max(first_context_type) as first_context_type,
        max(device) as device
    from session_contexts_aggregated
    group by
        session_id,
        user_id,
        session_started_at,
        session_date
),

final as (
    select
        session_id,
        user_id,
        session_started_at,
        session_ended_at,
        session_date,
        cast(
            {{ epoch_milliseconds('session_ended_at') }} - {{ epoch_milliseconds('session_started_at') }}
            as {{ dbt.type_float() }}
        ) / 1000 as duration_seconds,
        track_count,
        skip_count,
        cast(skip_count as {{ dbt.type_float() }}) / track_count as skip_rate,
        ms_played,
        distinct_context_type_count,
        first_context_type,
        device
    from aggregated
)

select * from final
