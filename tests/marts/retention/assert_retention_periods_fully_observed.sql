-- Censoring: every cohort period in the mart lies inside the observation window for every
-- member of the cohort (recomputed from dim_users, not from the mart's own bounds), and the
-- cohort size matches the users who signed up in the cohort.
{%- set month_days = var('retention_month_days') | int -%}
{%- set start_at = 'cast(observation_window.observation_start_date as ' ~ dbt.type_timestamp() ~ ')' -%}
{%- set end_at = 'cast(observation_window.observation_end_date as ' ~ dbt.type_timestamp() ~ ')' %}

with cohorts as (
    select
        cohort_grain,
        cohort_start_date,
        period_unit,
        period_number,
        period_length_days,
        cohort_user_count
    from {{ ref('fct_retention_cohorts') }}
    where segment_type = 'all'
),

users as (
    select
        user_id,
        signed_up_at
    from {{ ref('dim_users') }}
),

observation_window as (
    select
        observation_start_date,
        observation_end_date
    from {{ ref('int_retention_observation_window') }}
),

users_observed as (
    select
        users.user_id,
        users.signed_up_at
    from users
    cross join observation_window
    where
        users.signed_up_at
        < cast(observation_window.observation_end_date as {{ dbt.type_timestamp() }})
),

users_cohorted as (
    select
        'week' as cohort_grain,
        cast({{ dbt.date_trunc('week', 'signed_up_at') }} as date) as cohort_start_date,
        {{ epoch_milliseconds('signed_up_at') }} as signed_up_ms
    from users_observed
    union all
    select
        'month' as cohort_grain,
        cast({{ dbt.date_trunc('month', 'signed_up_at') }} as date) as cohort_start_date,
        {{ epoch_milliseconds('signed_up_at') }} as signed_up_ms
    from users_observed
),

cohort_members as (
    select
        cohort_grain,
        cohort_start_date,
        count(*) as member_count,
        min(signed_up_ms) as first_signed_up_ms,
        max(signed_up_ms) as last_signed_up_ms
    from users_cohorted
    group by
        cohort_grain,
        cohort_start_date
)

select
    cohorts.*,
    cohort_members.member_count
from cohorts
cross join observation_window
left join cohort_members
    on
        cohorts.cohort_grain = cohort_members.cohort_grain
        and cohorts.cohort_start_date = cohort_members.cohort_start_date
where
    cohort_members.member_count is null
    or cohorts.cohort_user_count != cohort_members.member_count
    or cohorts.period_length_days
    != case cohorts.period_unit when 'week' then 7 when 'month' then {{ month_days }} else 1 end
    or cohort_members.first_signed_up_ms
    + cast(cohorts.period_number as {{ dbt.type_bigint() }}) * cohorts.period_length_days * 86400000
    < {{ epoch_milliseconds(start_at) }}
    or cohort_members.last_signed_up_ms
    + cast(cohorts.period_number + 1 as {{ dbt.type_bigint() }}) * cohorts.period_length_days * 86400000
    > {{ epoch_milliseconds(end_at) }}
