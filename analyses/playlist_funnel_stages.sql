-- Playlist funnel stages for every segment, with the segment's largest step drop-off
-- (k -> k + 1) and largest drop-off band from fct_playlist_dropoff next to the stages.
with funnel as (
    select
        segment_type,
        segment_value,
        stage_number,
        stage_name,
        run_count,
        conversion_from_start_rate,
        conversion_from_previous_rate,
        drop_off_from_previous_rate
    from {{ ref('fct_playlist_funnel') }}
),

largest_step as (
    select
        segment_type,
        segment_value,
        from_track_ordinal as largest_drop_off_from_track,
        drop_off_rate as largest_step_drop_off_rate,
        largest_drop_off_band
    from {{ ref('fct_playlist_dropoff') }}
    where is_largest_drop_off_step
),

final as (
    select
        funnel.*,
        largest_step.largest_drop_off_from_track,
        largest_step.largest_step_drop_off_rate,
        largest_step.largest_drop_off_band
    from funnel
    left join largest_step
        on
            funnel.segment_type = largest_step.segment_type
            and funnel.segment_value = largest_step.segment_value
)

select * from final
order by segment_type, segment_value, stage_number
