{#- Step-by-step continuation in playlist runs: of the runs that played track k and could go
    on (the playlist has more tracks and the session was not cut at its play cap), the share
    that played track k + 1. Runs that finished the playlist or were cut at the cap on track
    k leave the risk set without counting as drop-off (censoring). Steps are grouped into
    position bands between funnel stages; per segment the step and the band with the largest
    drop-off rate are flagged among those with at least var funnel_dropoff_min_runs runs at
    risk. -#}
{%- set min_runs = var('funnel_dropoff_min_runs') | int -%}

with runs as (
    select
        playlist_type,
        tier,
        run_track_count,
        is_finished,
        is_cut_at_session_cap
    from {{ ref('fct_playlist_runs') }}
),

-- counted once per (playlist type, tier, length), then summed per segment: the segments
-- repeat counts, not runs (segmenting the runs first sorted four copies of each, 3.5M rows at
-- 1M sessions)
runs_counted as (
    select
        playlist_type,
        tier,
        run_track_count,
        count(*) as run_count,
        sum(case when is_finished or is_cut_at_session_cap then 1 else 0 end) as closed_run_count
    from runs
    group by
        playlist_type,
        tier,
        run_track_count
),

segmented as (
    {{ funnel_segments('runs_counted') }}
),

lengths_counted as (
    select
        segment_type,
        segment_value,
        run_track_count,
        cast(sum(run_count) as {{ dbt.type_bigint() }}) as run_count,
        cast(sum(closed_run_count) as {{ dbt.type_bigint() }}) as closed_run_count
    from segmented
    group by
        segment_type,
        segment_value,
        run_track_count
),

-- track ordinals 1 .. the longest run
ordinals as (
    select
        cast(
            {{ dbt.datediff("cast('2000-01-01' as date)", 'spine_date', 'day') }} + 1
            as {{ dbt.type_int() }}
        ) as track_ordinal
    from (
        {{ date_spine(
            "cast('2000-01-01' as date)",
            "(select cast(" ~ dbt.dateadd('day', '(max(run_track_count) - 1)', "cast('2000-01-01' as date)")
            ~ " as date) from runs_counted)"
        ) }}
    ) as spine
),

steps as (
    select
        lengths_counted.segment_type,
        lengths_counted.segment_value,
        ordinals.track_ordinal,
        sum(lengths_counted.run_count) as reached_run_count,
        sum(case
            when lengths_counted.run_track_count = ordinals.track_ordinal
                then lengths_counted.closed_run_count
            else 0
        end) as closed_run_count,
        sum(case
            when lengths_counted.run_track_count > ordinals.track_ordinal
                then lengths_counted.run_count
            else 0
        end) as continued_run_count
    from lengths_counted
    inner join ordinals
        on lengths_counted.run_track_count >= ordinals.track_ordinal
    group by
        lengths_counted.segment_type,
        lengths_counted.segment_value,
        ordinals.track_ordinal
),

rates_added as (
    select
        segment_type,
        segment_value,
        track_ordinal,
        {{ funnel_position_band('track_ordinal') }} as position_band,
        reached_run_count,
        closed_run_count,
        reached_run_count - closed_run_count as at_risk_run_count,
        continued_run_count,
        reached_run_count - closed_run_count - continued_run_count as dropped_run_count,
        case
            when reached_run_count - closed_run_count > 0
                then
                    cast(continued_run_count as {{ dbt.type_float() }})
                    / (reached_run_count - closed_run_count)
        end as continuation_rate
    from steps
),

bands_added as (
    select
        *,
        sum(at_risk_run_count) over (
            partition by segment_type, segment_value, position_band
        ) as band_at_risk_run_count,
        sum(dropped_run_count) over (
            partition by segment_type, segment_value, position_band
        ) as band_dropped_run_count
    from rates_added
),

ranked as (
    select
        *,
        case
            when band_at_risk_run_count > 0
                then cast(band_dropped_run_count as {{ dbt.type_float() }}) / band_at_risk_run_count
        end as band_drop_off_rate,
        row_number() over (
            partition by segment_type, segment_value
            order by
                case
                    when at_risk_run_count >= {{ min_runs }} then 1 - continuation_rate
                    else -1
                end desc,
                track_ordinal asc
        ) as step_drop_off_rank,
        dense_rank() over (
            partition by segment_type, segment_value
            order by
                case
                    when band_at_risk_run_count >= {{ min_runs }}
                        then
                            cast(band_dropped_run_count as {{ dbt.type_float() }})
                            / band_at_risk_run_count
                    else -1
                end desc,
                position_band asc
        ) as band_drop_off_rank
    from bands_added
),

largest_band as (
    select distinct
        segment_type,
        segment_value,
        position_band as largest_drop_off_band
    from ranked
    where band_drop_off_rank = 1 and band_at_risk_run_count >= {{ min_runs }}
),

final as (
    select
        ranked.segment_type,
        ranked.segment_value,
        ranked.track_ordinal as from_track_ordinal,
        cast(ranked.track_ordinal + 1 as {{ dbt.type_int() }}) as to_track_ordinal,
        ranked.position_band,
        cast(ranked.reached_run_count as {{ dbt.type_bigint() }}) as reached_run_count,
        cast(ranked.closed_run_count as {{ dbt.type_bigint() }}) as closed_run_count,
        cast(ranked.at_risk_run_count as {{ dbt.type_bigint() }}) as at_risk_run_count,
        cast(ranked.continued_run_count as {{ dbt.type_bigint() }}) as continued_run_count,
        cast(ranked.dropped_run_count as {{ dbt.type_bigint() }}) as dropped_run_count,
        ranked.continuation_rate,
        1 - ranked.continuation_rate as drop_off_rate,
        cast(ranked.band_at_risk_run_count as {{ dbt.type_bigint() }}) as band_at_risk_run_count,
        ranked.band_drop_off_rate,
        coalesce(ranked.step_drop_off_rank = 1 and ranked.at_risk_run_count >= {{ min_runs }}, false)
            as is_largest_drop_off_step,
        largest_band.largest_drop_off_band,
        coalesce(ranked.position_band = largest_band.largest_drop_off_band, false)
            as is_in_largest_drop_off_band
    from ranked
    left join largest_band
        on
            ranked.segment_type = largest_band.segment_type
            and ranked.segment_value = largest_band.segment_value
)

select * from final
