{#- Skip rate by one dimension at a time, long format for Tableau. The plays are counted once
    per combination of all six dimensions, then that small table is unpivoted. The source's
    own skip flag is counted beside the project's rule: they measure different things
    (doc skip_definitions). -#}
with plays as (
    select
        track_id,
        user_id,
        hour_of_day,
        iso_day_of_week,
        context_type,
        session_play_number,
        is_skipped,
        source_skipped
    from {{ ref('fct_plays') }}
),

tracks as (
    select
        track_id,
        genre
    from {{ ref('dim_tracks') }}
),

users as (
    select
        user_id,
        tier
    from {{ ref('dim_users') }}
),

plays_described as (
    select
        coalesce(tracks.genre, 'unknown') as genre,
        plays.hour_of_day,
        plays.iso_day_of_week,
        users.tier,
        coalesce(plays.context_type, 'unknown') as context_type,
        -- zero-padded bands sort in order as text
        case
            when plays.session_play_number = 1 then '01'
            when plays.session_play_number <= 5 then '02-05'
            when plays.session_play_number <= 10 then '06-10'
            when plays.session_play_number <= 20 then '11-20'
            else '21+'
        end as position_band,
        plays.is_skipped,
        plays.source_skipped
    from plays
    left join tracks
        on plays.track_id = tracks.track_id
    left join users
        on plays.user_id = users.user_id
),

combinations_counted as (
    select
        genre,
        hour_of_day,
        iso_day_of_week,
        tier,
        context_type,
        position_band,
        count(*) as play_count,
        sum(case when is_skipped then 1 else 0 end) as skip_count,
        sum(case when source_skipped then 1 else 0 end) as source_skip_count,
        sum(case when source_skipped is not null then 1 else 0 end) as source_labelled_play_count
    from plays_described
    group by
        genre,
        hour_of_day,
        iso_day_of_week,
        tier,
        context_type,
        position_band
),

unpivoted as (
    select
        'genre' as dimension,
        genre as dimension_value,
        play_count,
        skip_count,
        source_skip_count,
        source_labelled_play_count
    from combinations_counted
    union all
    select
        'hour_of_day' as dimension,
        lpad(cast(hour_of_day as {{ dbt.type_string() }}), 2, '0') as dimension_value,
        play_count,
        skip_count,
        source_skip_count,
        source_labelled_play_count
    from combinations_counted
    union all
    select
        'weekday' as dimension,
        case iso_day_of_week
            when 1 then '1-mon'
            when 2 then '2-tue'
            when 3 then '3-wed'
            when 4 then '4-thu'
            when 5 then '5-fri'
            when 6 then '6-sat'
            when 7 then '7-sun'
        end as dimension_value,
        play_count,
        skip_count,
        source_skip_count,
        source_labelled_play_count
    from combinations_counted
    union all
    select
        'tier' as dimension,
        tier as dimension_value,
        play_count,
        skip_count,
        source_skip_count,
        source_labelled_play_count
    from combinations_counted
    union all
    select
        'context_type' as dimension,
        context_type as dimension_value,
        play_count,
        skip_count,
        source_skip_count,
        source_labelled_play_count
    from combinations_counted
    union all
    select
        'position_band' as dimension,
        position_band as dimension_value,
        play_count,
        skip_count,
        source_skip_count,
        source_labelled_play_count
    from combinations_counted
),

aggregated as (
    select
        dimension,
        dimension_value,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count,
        sum(source_skip_count) as source_skip_count,
        sum(source_labelled_play_count) as source_labelled_play_count
    from unpivoted
    group by
        dimension,
        dimension_value
),

final as (
    select
        dimension,
        dimension_value,
        cast(play_count as {{ dbt.type_bigint() }}) as play_count,
        cast(skip_count as {{ dbt.type_bigint() }}) as skip_count,
        cast(skip_count as {{ dbt.type_float() }}) / play_count as skip_rate,
        cast(source_skip_count as {{ dbt.type_bigint() }}) as source_skip_count,
        cast(source_labelled_play_count as {{ dbt.type_bigint() }}) as source_labelled_play_count,
        -- null, not 0, where no play of the group has a source label
        cast(source_skip_count as {{ dbt.type_float() }})
        / nullif(source_labelled_play_count, 0) as source_skip_rate
    from aggregated
)

select * from final
