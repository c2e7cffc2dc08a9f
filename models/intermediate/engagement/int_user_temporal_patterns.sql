{#- One row per user with a session on or before the as-of day: when the user listens, by
    the UTC hour, weekday and month of each play. Parts of day: night 0-5, morning 6-11,
    afternoon 12-17, evening 18-23.

    Incremental by key (incremental_by_key): a daily run recomputes only the users with an
    hour row on a rebuilt day or whose newest session was on one, from all of their hours,
    instead of every user's (at 1M sessions 19,495 of 64,491 users on a day). month_count
    and monthly_play_cv also count the as-of month, so when that month moves on every
    user's row changes: the run then recomputes every user whose stored as-of month is
    another (once a month). -#}
{{ config(**incremental_by_key(['user_id'], 'first_session_date', 'last_session_date',
                               days_before=session_history_days(),
                               as_of_var='features_as_of_date')) }}
{#- dbt appends the hooks of each config call -#}
{{ config(pre_hook="{{ planner_without_nested_loops() }}") }}
{%- set as_of_date = feature_as_of_date(ref('int_user_hours_aggregated'), 'session_date') -%}
{%- set changed_keys = incremental_changed_keys(
    ['user_id'], 'last_session_date', ref('int_user_hours_aggregated'), 'session_date'
) %}
{%- if changed_keys %}
    {%- set changed_keys -%}
        {{ changed_keys }}
        union
        select user_id from {{ this }}
        where as_of_month_start_date <> cast({{ dbt.date_trunc('month', as_of_date) }} as date)
    {%- endset %}
{%- endif %}
{%- set feature_columns = [
    'first_session_date', 'last_session_date', 'night_play_share', 'morning_play_share',
    'afternoon_play_share', 'evening_play_share', 'weekend_play_share', 'night_skip_rate',
    'weekend_ratio', 'hour_entropy', 'weekday_entropy', 'preferred_iso_day_of_week',
    'peak_month', 'as_of_month_start_date', 'month_count', 'monthly_play_cv'
] -%}

with as_of as (
    select {{ as_of_date }} as as_of_date
),

user_hours as (
    select * from {{ ref('int_user_hours_aggregated') }}
),

changed_user_hours as (
    select user_hours.*
    from user_hours
    {{ incremental_changed_keys_filter(changed_keys, ['user_id'], 'user_hours') }}
),

hours_in_scope as (
    select
        user_hours.*,
        as_of.as_of_date
    from changed_user_hours as user_hours
    cross join as_of
    where user_hours.session_date <= as_of.as_of_date
),

user_totals as (
    select
        user_id,
        max(as_of_date) as as_of_date,
        min(session_date) as first_session_date,
        max(session_date) as last_session_date,
        sum(play_count) as play_count,
        sum(case when hour_of_day < 6 then play_count else 0 end) as night_play_count,
        sum(case when hour_of_day >= 6 and hour_of_day < 12 then play_count else 0 end)
            as morning_play_count,
        sum(case when hour_of_day >= 12 and hour_of_day < 18 then play_count else 0 end)
            as afternoon_play_count,
        sum(case when hour_of_day >= 18 then play_count else 0 end) as evening_play_count,
        sum(case when iso_day_of_week >= 6 then play_count else 0 end) as weekend_play_count,
        sum(case when hour_of_day < 6 then skip_count else 0 end) as night_skip_count
    from hours_in_scope
    group by user_id
),

hours as (
    select
        user_id,
        hour_of_day,
        sum(play_count) as play_count
    from hours_in_scope
    group by
        user_id,
        hour_of_day
),

weekdays as (
    select
        user_id,
        iso_day_of_week,
        sum(play_count) as play_count
    from hours_in_scope
    group by
        user_id,
        iso_day_of_week
),

weekdays_ranked as (
    select
        *,
        row_number() over (
            partition by user_id order by play_count desc, iso_day_of_week asc
        ) as weekday_rank
    from weekdays
),

months as (
    select
        user_id,
        cast({{ dbt.date_trunc('month', 'played_date') }} as date) as month_start_date,
        sum(play_count) as play_count
    from hours_in_scope
    group by
        user_id,
        cast({{ dbt.date_trunc('month', 'played_date') }} as date)
),

months_ranked as (
    select
        *,
        row_number() over (
            partition by user_id order by play_count desc, month_start_date asc
        ) as month_rank
    from months
),

hours_summarised as (
    select
        hours.user_id,
        sum({{ feature_entropy_term('hours.play_count', 'user_totals.play_count') }}) as hour_entropy
    from hours
    inner join user_totals
        on hours.user_id = user_totals.user_id
    group by hours.user_id
),

weekdays_summarised as (
    select
        weekdays_ranked.user_id,
        sum({{ feature_entropy_term('weekdays_ranked.play_count', 'user_totals.play_count') }})
            as weekday_entropy,
        max(case when weekdays_ranked.weekday_rank = 1 then weekdays_ranked.iso_day_of_week end)
            as preferred_iso_day_of_week
    from weekdays_ranked
    inner join user_totals
        on weekdays_ranked.user_id = user_totals.user_id
    group by weekdays_ranked.user_id
),

-- months from the user's first month to the as-of month count, those without plays as 0
months_summarised as (
    select
        months_ranked.user_id,
        {{ dbt.datediff(
            'min(months_ranked.month_start_date)',
            'greatest(max(months_ranked.month_start_date), cast('
            ~ dbt.date_trunc('month', 'max(user_totals.as_of_date)') ~ ' as date))',
            'month') }} + 1 as month_count,
        cast({{ dbt.date_trunc('month', 'max(user_totals.as_of_date)') }} as date) as as_of_month_start_date,
        sum(
            cast(months_ranked.play_count as {{ dbt.type_float() }}) * months_ranked.play_count
        ) as month_play_count_square_sum,
        max(
            case
                when months_ranked.month_rank = 1
                    then cast(extract(month from months_ranked.month_start_date) as {{ dbt.type_int() }})
            end
        ) as peak_month,
        max(user_totals.play_count) as play_count
    from months_ranked
    inner join user_totals
        on months_ranked.user_id = user_totals.user_id
    group by months_ranked.user_id
),

features as (
    select
        user_totals.user_id,
        user_totals.first_session_date,
        user_totals.last_session_date,
        {% for part in ['night', 'morning', 'afternoon', 'evening', 'weekend'] %}
            {{ feature_safe_divide('user_totals.' ~ part ~ '_play_count', 'user_totals.play_count') }}
                as {{ part }}_play_share,
        {% endfor %}
        {{ feature_safe_divide('user_totals.night_skip_count', 'user_totals.night_play_count') }}
            as night_skip_rate,
        {{ feature_safe_divide(
            'cast(user_totals.weekend_play_count as ' ~ dbt.type_float() ~ ') / 2',
            'cast(user_totals.play_count - user_totals.weekend_play_count as '
            ~ dbt.type_float() ~ ') / 5') }} as weekend_ratio,
        hours_summarised.hour_entropy,
        weekdays_summarised.weekday_entropy,
        weekdays_summarised.preferred_iso_day_of_week,
        months_summarised.peak_month,
        months_summarised.as_of_month_start_date,
        months_summarised.month_count,
        sqrt(greatest(
            months_summarised.month_play_count_square_sum / months_summarised.month_count
            - (cast(months_summarised.play_count as {{ dbt.type_float() }}) / months_summarised.month_count)
            * (cast(months_summarised.play_count as {{ dbt.type_float() }}) / months_summarised.month_count),
            0
        )) / (cast(months_summarised.play_count as {{ dbt.type_float() }}) / months_summarised.month_count)
            as monthly_play_cv
    from user_totals
    inner join hours_summarised
        on user_totals.user_id = hours_summarised.user_id
    inner join weekdays_summarised
        on user_totals.user_id = weekdays_summarised.user_id
    inner join months_summarised
        on user_totals.user_id = months_summarised.user_id
),

-- incremental: every changed user, one with no session left with a null last day
final as (
    {{ incremental_keyed_rows(changed_keys, ['user_id'], feature_columns, 'features') }}
)

select * from final
