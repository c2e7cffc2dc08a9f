{#- Signup-cohort retention in long format. Two cohort grains (signup week, signup month),
    each with its own period unit (weeks of 7 days, months of var retention_month_days days)
    and with N-day retention for the days in var retention_day_numbers. Periods are elapsed
    time since each user's own signup_at (int_retention_user_days).

    Censoring: a cohort's period n is emitted only when the observation window covers it
    for every member, i.e. earliest signup + n periods >= observation start and latest
    signup + (n + 1) periods <= observation end. Censored periods have no row at all. -#}
{%- set month_days = var('retention_month_days') | int -%}
{%- set day_numbers = var('retention_day_numbers') | map('int') | list -%}

with users as (
    select
        user_id,
        signed_up_at,
        tier,
        country_code
    from {{ ref('dim_users') }}
),

user_days as (
    select
        user_id,
        days_since_signup
    from {{ ref('int_retention_user_days') }}
),

observation_window as (
    select * from {{ ref('int_retention_observation_window') }}
),

period_units as (
    select
        'week' as cohort_grain,
        'week' as period_unit,
        7 as period_length_days
    union all
    select
        'month' as cohort_grain,
        'month' as period_unit,
        {{ month_days }} as period_length_days
    union all
    select
        'week' as cohort_grain,
        'day' as period_unit,
        1 as period_length_days
    union all
    select
        'month' as cohort_grain,
        'day' as period_unit,
        1 as period_length_days
),

users_observed as (
    select
        users.user_id,
        users.signed_up_at,
        {{ epoch_milliseconds('users.signed_up_at') }} as signed_up_ms,
        users.tier,
        coalesce(users.country_code, 'unknown') as country_code
    from users
    cross join observation_window
    where users.signed_up_at < cast(observation_window.observation_end_date as {{ dbt.type_timestamp() }})
),

user_last_days as (
    select
        user_id,
        max(days_since_signup) as last_active_day
    from user_days
    group by user_id
),

members as (
    select
        users_observed.user_id,
        users_observed.signed_up_ms,
        users_observed.tier,
        users_observed.country_code,
        period_units.cohort_grain,
        period_units.period_unit,
        period_units.period_length_days,
        cast(case period_units.cohort_grain
            when 'week' then {{ dbt.date_trunc('week', 'users_observed.signed_up_at') }}
            else {{ dbt.date_trunc('month', 'users_observed.signed_up_at') }}
        end as date) as cohort_start_date,
        -- null: never active
        cast(
            floor(
                cast(user_last_days.last_active_day as {{ dbt.type_float() }})
                / period_units.period_length_days
            )
            as {{ dbt.type_int() }}
        ) as last_active_period_number
    from users_observed
    cross join period_units
    left join user_last_days
        on users_observed.user_id = user_last_days.user_id
),

cohort_bounds as (
    select
        cohort_grain,
        period_unit,
        period_length_days,
        cohort_start_date,
        min(signed_up_ms) as first_signed_up_ms,
        max(signed_up_ms) as last_signed_up_ms
    from members
    group by
        cohort_grain,
        period_unit,
        period_length_days,
        cohort_start_date
),

-- candidate period numbers 0 .. days from the earliest signup to the as-of day
period_numbers as (
    select
        cast({{ dbt.datediff(
            '(select cast(min(signed_up_at) as date) from users_observed)', 'spine_date', 'day'
        ) }} as {{ dbt.type_int() }}) as period_number
    from (
        {{ date_spine(
            '(select cast(min(signed_up_at) as date) from users_observed)',
            '(select as_of_date from observation_window)'
        ) }}
    ) as spine
),

-- distinct (the rows are unique already): a subquery PostgreSQL cannot flatten, so the few
-- thousand (cohort, period) pairs are found first and each (tier, country) group joins its
-- cohort's. Flattened, every member met every candidate period before the filter (30M pairs
-- for 0.8M kept at 1M sessions, half of the model's time).
observed_periods as (
    select distinct
        cohort_bounds.cohort_grain,
        cohort_bounds.period_unit,
        cohort_bounds.period_length_days,
        cohort_bounds.cohort_start_date,
        period_numbers.period_number
    from cohort_bounds
    cross join period_numbers
    cross join observation_window
    where
        cohort_bounds.first_signed_up_ms
        + cast(period_numbers.period_number as {{ dbt.type_bigint() }})
        * cohort_bounds.period_length_days * 86400000
        >= observation_window.observation_start_ms
        and cohort_bounds.last_signed_up_ms
        + cast(period_numbers.period_number + 1 as {{ dbt.type_bigint() }})
        * cohort_bounds.period_length_days * 86400000
        <= observation_window.observation_end_ms
        and (
            cohort_bounds.period_unit != 'day'
            or period_numbers.period_number in ({{ day_numbers | join(', ') }})
        )
),

period_lengths as (
    select distinct
        period_unit,
        period_length_days
    from period_units
),

-- each user's active periods; of the days, only the day numbers reported (every other day
-- would be counted and dropped: most of the user days at 1M sessions)
user_periods_active as (
    select distinct
        user_days.user_id,
        period_lengths.period_unit,
        cast(floor(
            cast(user_days.days_since_signup as {{ dbt.type_float() }})
            / period_lengths.period_length_days
        ) as {{ dbt.type_int() }}) as period_number
    from user_days
    cross join period_lengths
    where
        period_lengths.period_unit != 'day'
        or user_days.days_since_signup in ({{ day_numbers | join(', ') }})
),

-- counted per (cohort, tier, country) and period, never per member and period: the members
-- of a group, those active in each period, and those last active in each period (the ones
-- active on or after period n are those last active in n or later)
member_groups as (
    select
        cohort_grain,
        period_unit,
        period_length_days,
        cohort_start_date,
        tier,
        country_code,
        count(*) as cohort_user_count
    from members
    group by
        cohort_grain,
        period_unit,
        period_length_days,
        cohort_start_date,
        tier,
        country_code
),

member_last_periods as (
    select
        cohort_grain,
        period_unit,
        cohort_start_date,
        tier,
        country_code,
        last_active_period_number,
        count(*) as user_count
    from members
    where last_active_period_number is not null
    group by
        cohort_grain,
        period_unit,
        cohort_start_date,
        tier,
        country_code,
        last_active_period_number
),

active_counts as (
    select
        members.cohort_grain,
        members.period_unit,
        members.cohort_start_date,
        members.tier,
        members.country_code,
        user_periods_active.period_number,
        count(*) as active_user_count
    from user_periods_active
    inner join members
        on
            user_periods_active.user_id = members.user_id
            and user_periods_active.period_unit = members.period_unit
    group by
        members.cohort_grain,
        members.period_unit,
        members.cohort_start_date,
        members.tier,
        members.country_code,
        user_periods_active.period_number
),

group_periods as (
    select
        observed_periods.cohort_grain,
        observed_periods.cohort_start_date,
        member_groups.tier,
        member_groups.country_code,
        observed_periods.period_unit,
        observed_periods.period_length_days,
        observed_periods.period_number,
        member_groups.cohort_user_count
    from observed_periods
    inner join member_groups
        on
            observed_periods.cohort_grain = member_groups.cohort_grain
            and observed_periods.period_unit = member_groups.period_unit
            and observed_periods.cohort_start_date = member_groups.cohort_start_date
),

on_or_after_counts as (
    select
        group_periods.cohort_grain,
        group_periods.period_unit,
        group_periods.cohort_start_date,
        group_periods.tier,
        group_periods.country_code,
        group_periods.period_number,
        sum(member_last_periods.user_count) as active_on_or_after_user_count
    from group_periods
    inner join member_last_periods
        on
            group_periods.cohort_grain = member_last_periods.cohort_grain
            and group_periods.period_unit = member_last_periods.period_unit
            and group_periods.cohort_start_date = member_last_periods.cohort_start_date
            and group_periods.tier = member_last_periods.tier
            and group_periods.country_code = member_last_periods.country_code
            and group_periods.period_number <= member_last_periods.last_active_period_number
    group by
        group_periods.cohort_grain,
        group_periods.period_unit,
        group_periods.cohort_start_date,
        group_periods.tier,
        group_periods.country_code,
        group_periods.period_number
),

-- one row per (tier, country), then summed per segment: the segments repeat counts, not
-- members
tier_country_counts as (
    select
        group_periods.cohort_grain,
        group_periods.cohort_start_date,
        group_periods.tier,
        group_periods.country_code,
        group_periods.period_unit,
        group_periods.period_length_days,
        group_periods.period_number,
        group_periods.cohort_user_count,
        coalesce(active_counts.active_user_count, 0) as active_user_count,
        coalesce(on_or_after_counts.active_on_or_after_user_count, 0)
            as active_on_or_after_user_count
    from group_periods
    left join active_counts
        on
            group_periods.cohort_grain = active_counts.cohort_grain
            and group_periods.period_unit = active_counts.period_unit
            and group_periods.cohort_start_date = active_counts.cohort_start_date
            and group_periods.tier = active_counts.tier
            and group_periods.country_code = active_counts.country_code
            and group_periods.period_number = active_counts.period_number
    left join on_or_after_counts
        on
            group_periods.cohort_grain = on_or_after_counts.cohort_grain
            and group_periods.period_unit = on_or_after_counts.period_unit
            and group_periods.cohort_start_date = on_or_after_counts.cohort_start_date
            and group_periods.tier = on_or_after_counts.tier
            and group_periods.country_code = on_or_after_counts.country_code
            and group_periods.period_number = on_or_after_counts.period_number
),

segmented as (
    {{ segment_rows('tier_country_counts', [
        ['all', "'all'"],
        ['tier', 'tier'],
        ['country', 'country_code'],
    ]) }}
),

aggregated as (
    select
        cohort_grain,
        cohort_start_date,
        segment_type,
        segment_value,
        period_unit,
        period_length_days,
        period_number,
        cast(sum(cohort_user_count) as {{ dbt.type_bigint() }}) as cohort_user_count,
        cast(sum(active_user_count) as {{ dbt.type_bigint() }}) as active_user_count,
        cast(sum(active_on_or_after_user_count) as {{ dbt.type_bigint() }}) as active_on_or_after_user_count
    from segmented
    group by
        cohort_grain,
        cohort_start_date,
        segment_type,
        segment_value,
        period_unit,
        period_length_days,
        period_number
),

final as (
    select
        aggregated.cohort_grain,
        aggregated.cohort_start_date,
        aggregated.segment_type,
        aggregated.segment_value,
        aggregated.period_unit,
        aggregated.period_number,
        cast(aggregated.period_length_days as {{ dbt.type_int() }}) as period_length_days,
        cast(aggregated.cohort_user_count as {{ dbt.type_bigint() }}) as cohort_user_count,
        cast(aggregated.active_user_count as {{ dbt.type_bigint() }}) as active_user_count,
        cast(aggregated.active_user_count as {{ dbt.type_float() }})
        / aggregated.cohort_user_count as retention_rate,
        cast(aggregated.active_on_or_after_user_count as {{ dbt.type_bigint() }})
            as active_on_or_after_user_count,
        cast(aggregated.active_on_or_after_user_count as {{ dbt.type_float() }})
        / aggregated.cohort_user_count as unbounded_retention_rate,
        observation_window.as_of_date
    from aggregated
    cross join observation_window
)

select * from final
