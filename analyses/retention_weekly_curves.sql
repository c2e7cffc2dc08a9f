-- Weekly retention curves by tier, pooled over every signup-week cohort whose week k is
-- fully observed (user-weighted), with the implied weekly survival week k / week k-1 and a
-- geometric fit (sum of week k actives / sum of week k-1 actives over the same cohorts).
-- On generated data the curves should follow 0.85^k (free) and 0.93^k (premium).
with cohorts as (
    select
        cohort_start_date,
        segment_value as tier,
        period_number as week_number,
        cohort_user_count,
        active_user_count
    from {{ ref('fct_retention_cohorts') }}
    where
        cohort_grain = 'week'
        and period_unit = 'week'
        and segment_type = 'tier'
),

pooled as (
    select
        tier,
        week_number,
        sum(cohort_user_count) as cohort_user_count,
        sum(active_user_count) as active_user_count,
        cast(sum(active_user_count) as {{ dbt.type_float() }}) / sum(cohort_user_count)
            as retention_rate
    from cohorts
    group by
        tier,
        week_number
),

transitions as (
    select
        this_week.tier,
        sum(this_week.active_user_count) as survived_user_count,
        sum(last_week.active_user_count) as at_risk_user_count
    from cohorts as this_week
    inner join cohorts as last_week
        on
            this_week.cohort_start_date = last_week.cohort_start_date
            and this_week.tier = last_week.tier
            and this_week.week_number = last_week.week_number + 1
    group by this_week.tier
),

final as (
    select
        pooled.tier,
        pooled.week_number,
        pooled.cohort_user_count,
        pooled.active_user_count,
        pooled.retention_rate,
        pooled.retention_rate / lag(pooled.retention_rate) over (
            partition by pooled.tier order by pooled.week_number
        ) as implied_weekly_survival,
        cast(transitions.survived_user_count as {{ dbt.type_float() }})
        / transitions.at_risk_user_count as fitted_weekly_survival
    from pooled
    left join transitions
        on pooled.tier = transitions.tier
)

select * from final
order by tier, week_number
