-- Skip rate breakdowns: the one-dimension table of fct_skip_rates, and skip rate by
-- context type and position in session band from the plays themselves (a two-way table).
with one_way as (
    select
        dimension,
        dimension_value,
        play_count,
        skip_rate
    from {{ ref('fct_skip_rates') }}
),

plays as (
    select
        coalesce(context_type, 'unknown') as context_type,
        case
            when session_play_number = 1 then '01'
            when session_play_number <= 5 then '02-05'
            when session_play_number <= 10 then '06-10'
            when session_play_number <= 20 then '11-20'
            else '21+'
        end as position_band,
        is_skipped
    from {{ ref('fct_plays') }}
),

two_way as (
    select
        'context_type x position_band' as dimension,
        {{ dbt.concat(['context_type', "' x '", 'position_band']) }} as dimension_value,
        count(*) as play_count,
        avg(case when is_skipped then 1.0 else 0.0 end) as skip_rate
    from plays
    group by
        context_type,
        position_band
),

final as (
    select * from one_way
    union all
    select * from two_way
)

select * from final
order by dimension, dimension_value
