{{ config(
    materialized='incremental',
    **incremental_by_day('activity_date', key=['activity_date', 'user_id'])
) }}
{%- set window_start = incremental_window_start() %}

with plays as (
    select
        user_id,
        played_date,
        ms_played,
        is_skipped
    from {{ ref('int_plays_sessionized') }}
    {% if is_incremental() %}
        -- the session day bound adds nothing (a play's session starts at most that long
        -- before it) but lets the rebuild read int_plays_sessionized's index on it
        where
            played_date >= {{ window_start }}
            and session_date >= {{ dbt.dateadd('day', -session_history_days(), window_start) }}
    {% endif %}
),

aggregated as (
    select
        user_id,
        played_date as activity_date,
        count(*) as play_count,
        sum(case when is_skipped then 1 else 0 end) as skip_count,
        cast(sum(ms_played) as {{ dbt.type_bigint() }}) as ms_played
    from plays
    group by
        user_id,
        played_date
)

select * from aggregated
