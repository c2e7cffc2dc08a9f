-- Within a cohort, segment and period unit: the cohort size is the same in every period,
-- active users never exceed it nor the users active on or after the period, and unbounded
-- retention never rises with the period. The 'all' segment equals the sum of the tiers.
with cohorts as (
    select
        cohort_grain,
        cohort_start_date,
        segment_type,
        segment_value,
        period_unit,
        period_number,
        cohort_user_count,
        active_user_count,
        active_on_or_after_user_count
    from {{ ref('fct_retention_cohorts') }}
),

previous_added as (
    select
        *,
        lag(cohort_user_count) over (
            partition by cohort_grain, cohort_start_date, segment_type, segment_value, period_unit
            order by period_number
        ) as previous_cohort_user_count,
        lag(active_on_or_after_user_count) over (
            partition by cohort_grain, cohort_start_date, segment_type, segment_value, period_unit
            order by period_number
        ) as previous_on_or_after_count
    from cohorts
),

row_failures as (
    select
        cohort_grain,
        cohort_start_date,
        segment_type,
        segment_value,
        period_unit,
        period_number,
        'row' as failure
    from previous_added
    where
        active_user_count > cohort_user_count
        or active_user_count > active_on_or_after_user_count
        or active_on_or_after_user_count > cohort_user_count
        or cohort_user_count != previous_cohort_user_count
        or active_on_or_after_user_count > previous_on_or_after_count
),

tier_sums as (
    select
        cohort_grain,
        cohort_start_date,
        period_unit,
        period_number,
        sum(cohort_user_count) as cohort_user_count,
        sum(active_user_count) as active_user_count,
        sum(active_on_or_after_user_count) as active_on_or_after_user_count
    from cohorts
    where segment_type = 'tier'
    group by
        cohort_grain,
        cohort_start_date,
        period_unit,
        period_number
),

segment_failures as (
    select
        cohorts.cohort_grain,
        cohorts.cohort_start_date,
        cohorts.segment_type,
        cohorts.segment_value,
        cohorts.period_unit,
        cohorts.period_number,
        'segments' as failure
    from cohorts
    left join tier_sums
        on
            cohorts.cohort_grain = tier_sums.cohort_grain
            and cohorts.cohort_start_date = tier_sums.cohort_start_date
            and cohorts.period_unit = tier_sums.period_unit
            and cohorts.period_number = tier_sums.period_number
    where
        cohorts.segment_type = 'all'
        and (
            tier_sums.cohort_user_count is null
            or cohorts.cohort_user_count != tier_sums.cohort_user_count
            or cohorts.active_user_count != tier_sums.active_user_count
            or cohorts.active_on_or_after_user_count != tier_sums.active_on_or_after_user_count
        )
)

select * from row_failures
union all
select * from segment_failures
