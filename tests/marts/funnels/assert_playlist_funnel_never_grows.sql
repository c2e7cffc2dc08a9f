-- Funnel stages never grow: every stage has at most as many runs as the stage before it,
-- and the conversion from the start never rises from one stage to the next.
with funnel as (
    select
        segment_type,
        segment_value,
        stage_number,
        run_count,
        previous_stage_run_count,
        conversion_from_start_rate
    from {{ ref('fct_playlist_funnel') }}
),

previous_added as (
    select
        *,
        lag(run_count) over (
            partition by segment_type, segment_value order by stage_number
        ) as lagged_run_count,
        lag(conversion_from_start_rate) over (
            partition by segment_type, segment_value order by stage_number
        ) as lagged_conversion_rate
    from funnel
)

select * from previous_added
where
    run_count > previous_stage_run_count
    or run_count > lagged_run_count
    or conversion_from_start_rate > lagged_conversion_rate
    or (stage_number > 1 and lagged_run_count != previous_stage_run_count)
