-- Churn status and declining engagement by tier as of the as-of day: users, churned share,
-- declining share among active users, average days since last play.
with churn as (
    select
        tier,
        churn_status,
        is_declining_engagement,
        days_since_last_play
    from {{ ref('fct_user_churn') }}
),

final as (
    select
        tier,
        count(*) as user_count,
        sum(case when churn_status = 'active' then 1 else 0 end) as active_user_count,
        sum(case when churn_status = 'churned' then 1 else 0 end) as churned_user_count,
        sum(case when churn_status = 'never_active' then 1 else 0 end) as never_active_user_count,
        cast(sum(case when churn_status = 'churned' then 1 else 0 end) as {{ dbt.type_float() }})
        / nullif(sum(case when churn_status != 'never_active' then 1 else 0 end), 0)
            as churned_share_of_ever_active,
        cast(sum(case
            when churn_status = 'active' and is_declining_engagement then 1 else 0
        end) as {{ dbt.type_float() }})
        / nullif(sum(case when churn_status = 'active' then 1 else 0 end), 0)
            as declining_share_of_active,
        avg(days_since_last_play) as avg_days_since_last_play
    from churn
    group by tier
)

select * from final
order by tier
