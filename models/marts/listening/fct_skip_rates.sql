{#- Skip rate by one dimension at a time, long format for Tableau: the per-day counts of
    int_play_skips_counted summed over every day. The source's own skip flag is counted
    beside the project's rule: they measure different things (doc skip_definitions). -#}
with days as (
    select
        dimension,
        dimension_value,
        play_count,
        skip_count,
        source_skip_count,
        source_labelled_play_count
    from {{ ref('int_play_skips_counted') }}
),

aggregated as (
    select
        dimension,
        dimension_value,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count,
        sum(source_skip_count) as source_skip_count,
        sum(source_labelled_play_count) as source_labelled_play_count
    from days
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
