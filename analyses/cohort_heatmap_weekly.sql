-- Cohort heatmap, the shape Tableau draws: one row per signup week and week since signup
-- (all users), bounded and unbounded retention, plus the 1/7/30-day retention of each
-- cohort in columns for a side table. Cells missing from the mart are not yet observable.
with weekly as (
    select
        cohort_start_date,
        period_number as week_number,
        cohort_user_count,
        retention_rate,
        unbounded_retention_rate
    from {{ ref('fct_retention_cohorts') }}
    where
        cohort_grain = 'week'
        and period_unit = 'week'
        and segment_type = 'all'
),

daily as (
    select
        cohort_start_date,
        max(case when period_number = 1 then retention_rate end) as day_1_retention_rate,
        max(case when period_number = 7 then retention_rate end) as day_7_retention_rate,
        max(case when period_number = 30 then retention_rate end) as day_30_retention_rate
    from {{ ref('fct_retention_cohorts') }}
    where
        cohort_grain = 'week'
        and period_unit = 'day'
        and segment_type = 'all'
    group by cohort_start_date
),

final as (
    select
        weekly.cohort_start_date,
        weekly.week_number,
        weekly.cohort_user_count,
        weekly.retention_rate,
        weekly.unbounded_retention_rate,
        daily.day_1_retention_rate,
        daily.day_7_retention_rate,
        daily.day_30_retention_rate
    from weekly
    left join daily
        on weekly.cohort_start_date = daily.cohort_start_date
)

select * from final
order by cohort_start_date, week_number
