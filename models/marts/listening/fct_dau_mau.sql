{#- Daily, weekly and monthly active users on every day, overall and per tier and country.
    A user is active on day d of a trailing w-day window when they have a valid play on one
    of the days d-w+1 .. d. Each active day a covers the days a .. min(a + w, next active
    day) - 1; one user's spans never overlap, so the count on d is a running sum of +1 where
    a span starts and -1 where it ends: one pass over user-days, no range join.

    Incremental by day: a run rebuilds the days from the first one a change touched (F),
    starting each segment's running sums at its stored counts of day F-1 (unchanged: they
    depend only on the days before F) and adding the starts and ends from F on of the spans
    that begin after F-1 minus the longest window, the only ones that reach F. A change of
    raw users (tier, country) touches every day, so it rebuilds all. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('activity_date', key=['activity_date', 'segment_type', 'segment_value'])
) }}
{%- set window_start = incremental_window_start() %}
{%- set longest_window = [var('wau_window_days'), var('mau_window_days')] | max %}

with user_days as (
    select
        user_id,
        activity_date
    from {{ ref('int_user_days_active') }}
    {% if is_incremental() %}
        where activity_date >= cast({{ dbt.dateadd('day', -longest_window, window_start) }} as date)
    {% endif %}
),

-- the running sums of the day before the first rebuilt day (none on a full build)
carried as (
    {% if is_incremental() %}
        select
            segment_type,
            segment_value,
            dau,
            wau,
            mau
        from {{ this }}
        where activity_date = cast({{ dbt.dateadd('day', -1, window_start) }} as date)
    {% else %}
        select
            cast(null as {{ dbt.type_string() }}) as segment_type,
            cast(null as {{ dbt.type_string() }}) as segment_value,
            cast(null as {{ dbt.type_bigint() }}) as dau,
            cast(null as {{ dbt.type_bigint() }}) as wau,
            cast(null as {{ dbt.type_bigint() }}) as mau
        where 1 = 0
    {% endif %}
),

first_active_date as (
    select min(activity_date) as activity_date
    from {{ ref('int_user_days_active') }}
),

users as (
    select
        user_id,
        tier,
        coalesce(country_code, 'unknown') as country_code
    from {{ ref('stg_streaming__users') }}
),

next_activity_added as (
    select
        user_id,
        activity_date,
        lead(activity_date) over (
            partition by user_id order by activity_date
        ) as next_activity_date
    from user_days
),

spans as (
    select
        user_id,
        activity_date,
        cast({{ dbt.dateadd('day', 1, 'activity_date') }} as date) as dau_window_end_date,
        cast({{ dbt.dateadd('day', var('wau_window_days'), 'activity_date') }} as date)
            as wau_window_end_date,
        cast({{ dbt.dateadd('day', var('mau_window_days'), 'activity_date') }} as date)
            as mau_window_end_date,
        next_activity_date
    from next_activity_added
),

-- each span ends where its window ends or where the user's next span starts
span_ends_added as (
    select
        user_id,
        activity_date,
        case
            when next_activity_date < dau_window_end_date then next_activity_date
            else dau_window_end_date
        end as dau_end_date,
        case
            when next_activity_date < wau_window_end_date then next_activity_date
            else wau_window_end_date
        end as wau_end_date,
        case
            when next_activity_date < mau_window_end_date then next_activity_date
            else mau_window_end_date
        end as mau_end_date
    from spans
),

changes as (
    select
        user_id,
        activity_date as change_date,
        1 as dau_change,
        1 as wau_change,
        1 as mau_change
    from span_ends_added
    union all
    select
        user_id,
        dau_end_date as change_date,
        -1 as dau_change,
        0 as wau_change,
        0 as mau_change
    from span_ends_added
    union all
    select
        user_id,
        wau_end_date as change_date,
        0 as dau_change,
        -1 as wau_change,
        0 as mau_change
    from span_ends_added
    union all
    select
        user_id,
        mau_end_date as change_date,
        0 as dau_change,
        0 as wau_change,
        -1 as mau_change
    from span_ends_added
),

-- tier and country are the user's current ones (raw users is a snapshot), not history
segmented_changes as (
    select
        'overall' as segment_type,
        'all' as segment_value,
        changes.change_date,
        changes.dau_change,
        changes.wau_change,
        changes.mau_change
    from changes
    union all
    select
        'tier' as segment_type,
        users.tier as segment_value,
        changes.change_date,
        changes.dau_change,
        changes.wau_change,
        changes.mau_change
    from changes
    inner join users
        on changes.user_id = users.user_id
    union all
    select
        'country' as segment_type,
        users.country_code as segment_value,
        changes.change_date,
        changes.dau_change,
        changes.wau_change,
        changes.mau_change
    from changes
    inner join users
        on changes.user_id = users.user_id
),

daily_changes as (
    select
        segment_type,
        segment_value,
        change_date,
        sum(dau_change) as dau_change,
        sum(wau_change) as wau_change,
        sum(mau_change) as mau_change
    from segmented_changes
    {% if is_incremental() %}
        where change_date >= {{ window_start }}
    {% endif %}
    group by
        segment_type,
        segment_value,
        change_date
),

days as (
    {{ date_spine(
        '(select ' ~ ('greatest(' ~ window_start ~ ', activity_date)' if is_incremental()
                      else 'activity_date') ~ ' from first_active_date)',
        '(select max(activity_date) from user_days)'
    ) }}
),

segments as (
    select
        segment_type,
        segment_value
    from daily_changes
    union
    select
        segment_type,
        segment_value
    from carried
),

grid as (
    select
        days.spine_date as activity_date,
        segments.segment_type,
        segments.segment_value,
        coalesce(daily_changes.dau_change, 0) as dau_change,
        coalesce(daily_changes.wau_change, 0) as wau_change,
        coalesce(daily_changes.mau_change, 0) as mau_change
    from days
    cross join segments
    left join daily_changes
        on
            days.spine_date = daily_changes.change_date
            and segments.segment_type = daily_changes.segment_type
            and segments.segment_value = daily_changes.segment_value
),

running_totals as (
    select
        grid.activity_date,
        grid.segment_type,
        grid.segment_value,
        cast(coalesce(carried.dau, 0) + sum(grid.dau_change) over (
            partition by grid.segment_type, grid.segment_value
            order by grid.activity_date rows unbounded preceding
        ) as {{ dbt.type_bigint() }}) as dau,
        cast(coalesce(carried.wau, 0) + sum(grid.wau_change) over (
            partition by grid.segment_type, grid.segment_value
            order by grid.activity_date rows unbounded preceding
        ) as {{ dbt.type_bigint() }}) as wau,
        cast(coalesce(carried.mau, 0) + sum(grid.mau_change) over (
            partition by grid.segment_type, grid.segment_value
            order by grid.activity_date rows unbounded preceding
        ) as {{ dbt.type_bigint() }}) as mau
    from grid
    left join carried
        on
            grid.segment_type = carried.segment_type
            and grid.segment_value = carried.segment_value
),

final as (
    select
        activity_date,
        segment_type,
        segment_value,
        dau,
        wau,
        mau,
        case
            when mau > 0 then cast(dau as {{ dbt.type_float() }}) / mau
        end as stickiness,
        -- early days see only part of their 28-day window, so MAU is understated there
        activity_date >= (
            select
                cast(
                    {{ dbt.dateadd('day', var('mau_window_days') - 1, 'activity_date') }}
                    as date
                )
            from first_active_date
        ) as is_full_window
    from running_totals
)

select * from final
