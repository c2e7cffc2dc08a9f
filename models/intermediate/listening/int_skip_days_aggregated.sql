{#- The state behind fct_skip_rates: per play day, valid plays and skips counted by one
    dimension at a time. Play attributes (hour, weekday, context, position band) are stored
    as the mart shows them; the user's tier and the track's genre are not, since they are
    attributes of dimension tables that can change: the plays are counted per user_id and
    per track_id instead and fct_skip_rates joins the current tier and genre when it sums
    the days. So a day never has to be rebuilt for a tier change, and the incremental run
    only counts the new days. Each dimension is its own small hash aggregate (one sort on
    six keys was the cost of the old mart). -#}
{{ config(materialized='incremental', **incremental_by_day('played_date')) }}

with plays as (
    select
        played_date,
        user_id,
        track_id,
        hour_of_day,
        iso_day_of_week,
        context_type,
        session_play_number,
        is_skipped,
        source_skipped
    from {{ ref('fct_plays') }}
    {% if is_incremental() %}
        where played_date >= {{ incremental_window_start() }}
    {% endif %}
),

plays_described as (
    select
        played_date,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast(track_id as {{ dbt.type_string() }}) as track_id,
        lpad(cast(hour_of_day as {{ dbt.type_string() }}), 2, '0') as hour_of_day,
        case iso_day_of_week
            when 1 then '1-mon'
            when 2 then '2-tue'
            when 3 then '3-wed'
            when 4 then '4-thu'
            when 5 then '5-fri'
            when 6 then '6-sat'
            when 7 then '7-sun'
        end as weekday_name,
        coalesce(context_type, 'unknown') as context_type,
        -- zero-padded bands sort in order as text
        case
            when session_play_number = 1 then '01'
            when session_play_number <= 5 then '02-05'
            when session_play_number <= 10 then '06-10'
            when session_play_number <= 20 then '11-20'
            else '21+'
        end as position_band,
        case when is_skipped then 1 else 0 end as skip_flag,
        case when source_skipped then 1 else 0 end as source_skip_flag,
        case when source_skipped is not null then 1 else 0 end as source_labelled_flag
    from plays
),

{#- (dimension as the mart names it, column) -#}
{%- set dimensions = [
    ('user_id', 'user_id'), ('track_id', 'track_id'), ('hour_of_day', 'hour_of_day'),
    ('weekday', 'weekday_name'), ('context_type', 'context_type'),
    ('position_band', 'position_band')] %}

{% for dimension, column in dimensions %}
    {{ column }}_counted as (
        select
            played_date,
            '{{ dimension }}' as dimension,
            {{ column }} as dimension_value,
            count(*) as play_count,
            sum(skip_flag) as skip_count,
            sum(source_skip_flag) as source_skip_count,
            sum(source_labelled_flag) as source_labelled_play_count
        from plays_described
        group by
            played_date,
            {{ column }}
    ),
{% endfor %}

unioned as (
    {% for dimension, column in dimensions %}
        select * from {{ column }}_counted
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        played_date,
        dimension,
        dimension_value,
        cast(play_count as {{ dbt.type_bigint() }}) as play_count,
        cast(skip_count as {{ dbt.type_bigint() }}) as skip_count,
        cast(source_skip_count as {{ dbt.type_bigint() }}) as source_skip_count,
        cast(source_labelled_play_count as {{ dbt.type_bigint() }}) as source_labelled_play_count
    from unioned
)

select * from final
