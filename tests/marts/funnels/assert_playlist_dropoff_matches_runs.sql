-- The drop-off steps chain (runs that continued from track k are the runs that reached
-- track k + 1) and agree with the funnel: runs reaching track k in the drop-off mart equal
-- the funnel's reached_track_k stage minus the finished runs shorter than k.
with steps as (
    select
        segment_type,
        segment_value,
        from_track_ordinal,
        reached_run_count,
        continued_run_count
    from {{ ref('fct_playlist_dropoff') }}
),

funnel as (
    select
        segment_type,
        segment_value,
        stage_track_ordinal,
        run_count
    from {{ ref('fct_playlist_funnel') }}
    where stage_track_ordinal is not null
),

finished_runs as (
    select
        playlist_type,
        tier,
        run_track_count,
        count(*) as run_count
    from {{ ref('fct_playlist_runs') }}
    where is_finished
    group by
        playlist_type,
        tier,
        run_track_count
),

short_finished as (
    select
        funnel.segment_type,
        funnel.segment_value,
        funnel.stage_track_ordinal,
        sum(case
            when
                finished_runs.run_track_count < funnel.stage_track_ordinal
                and (
                    funnel.segment_type = 'all'
                    or (funnel.segment_type = 'tier' and funnel.segment_value = finished_runs.tier)
                    or (
                        funnel.segment_type = 'playlist_type'
                        and funnel.segment_value = finished_runs.playlist_type
                    )
                    or (
                        funnel.segment_type = 'playlist_type_tier'
                        and funnel.segment_value
                        = {{ dbt.concat(['finished_runs.playlist_type', "' | '", 'finished_runs.tier']) }}
                    )
                )
                then finished_runs.run_count
            else 0
        end) as short_finished_run_count
    from funnel
    cross join finished_runs
    group by
        funnel.segment_type,
        funnel.segment_value,
        funnel.stage_track_ordinal
),

chain_broken as (
    select
        current_step.segment_type,
        current_step.segment_value,
        current_step.from_track_ordinal,
        'chain' as failure
    from steps as current_step
    left join steps as next_step
        on
            current_step.segment_type = next_step.segment_type
            and current_step.segment_value = next_step.segment_value
            and current_step.from_track_ordinal + 1 = next_step.from_track_ordinal
    where current_step.continued_run_count != coalesce(next_step.reached_run_count, 0)
),

funnel_disagrees as (
    select
        funnel.segment_type,
        funnel.segment_value,
        funnel.stage_track_ordinal as from_track_ordinal,
        'funnel' as failure
    from funnel
    left join short_finished
        on
            funnel.segment_type = short_finished.segment_type
            and funnel.segment_value = short_finished.segment_value
            and funnel.stage_track_ordinal = short_finished.stage_track_ordinal
    left join steps
        on
            funnel.segment_type = steps.segment_type
            and funnel.segment_value = steps.segment_value
            and funnel.stage_track_ordinal = steps.from_track_ordinal
    where
        funnel.run_count - coalesce(short_finished.short_finished_run_count, 0)
        != coalesce(steps.reached_run_count, 0)
)

select * from chain_broken
union all
select * from funnel_disagrees
