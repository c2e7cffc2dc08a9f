{#- From the valid plays of int_plays_flagged (the plays int_plays_sessionized holds): this
    needs no session, so a full build runs it beside the parts of int_plays_sessionized. -#}
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
    from {{ ref('int_plays_flagged') }}
    where
        is_valid
        {% if is_incremental() %}
            and played_date >= {{ window_start }}
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
