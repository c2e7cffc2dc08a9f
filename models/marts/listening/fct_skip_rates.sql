{#- Skip rate by one dimension at a time, long format for Tableau, summed from the per-day
    counts of int_skip_days_aggregated. Tier and genre are the user's and the track's as the
    dimension tables hold them now (raw users has only the tier at export time): a tier
    change moves all of that user's plays to the new tier, as a full rebuild would. The
    source's own skip flag is counted beside the project's rule: they measure different
    things (doc skip_definitions). -#}
with day_counts as (
    select
        dimension,
        dimension_value,
        play_count,
        skip_count,
        source_skip_count,
        source_labelled_play_count
    from {{ ref('int_skip_days_aggregated') }}
),

users as (
    select
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        tier
    from {{ ref('dim_users') }}
),

tracks as (
    select
        cast(track_id as {{ dbt.type_string() }}) as track_id,
        genre
    from {{ ref('dim_tracks') }}
),

play_attributes as (
    select
        dimension,
        dimension_value,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count,
        sum(source_skip_count) as source_skip_count,
        sum(source_labelled_play_count) as source_labelled_play_count
    from day_counts
    where dimension in ('hour_of_day', 'weekday', 'context_type', 'position_band')
    group by
        dimension,
        dimension_value
),

tiers as (
    select
        'tier' as dimension,
        users.tier as dimension_value,
        sum(day_counts.play_count) as play_count,
        sum(day_counts.skip_count) as skip_count,
        sum(day_counts.source_skip_count) as source_skip_count,
        sum(day_counts.source_labelled_play_count) as source_labelled_play_count
    from day_counts
    left join users
        on day_counts.dimension_value = users.user_id
    where day_counts.dimension = 'user_id'
    group by users.tier
),

genres as (
    select
        'genre' as dimension,
        coalesce(tracks.genre, 'unknown') as dimension_value,
        sum(day_counts.play_count) as play_count,
        sum(day_counts.skip_count) as skip_count,
        sum(day_counts.source_skip_count) as source_skip_count,
        sum(day_counts.source_labelled_play_count) as source_labelled_play_count
    from day_counts
    left join tracks
        on day_counts.dimension_value = tracks.track_id
    where day_counts.dimension = 'track_id'
    group by coalesce(tracks.genre, 'unknown')
),

aggregated as (
    select * from genres
    union all
    select * from play_attributes
    union all
    select * from tiers
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
