{#- MetricFlow's time spine: one row per day over the listening history, so cumulative
    metrics (WAU, MAU) have a row for every day, also days nobody listened. -#}
with active_days as (
    select activity_date
    from {{ ref('int_user_days_active') }}
),

bounds as (
    select
        min(activity_date) as first_date,
        max(activity_date) as last_date
    from active_days
),

spine as (
    {{ date_spine('(select first_date from bounds)', '(select last_date from bounds)') }}
),

final as (
    select cast(spine_date as date) as date_day
    from spine
)

select * from final
