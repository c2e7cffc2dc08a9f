{#- One row per user with a session on or before the as-of day (var features_as_of_date,
    default the last day of data): activity, streaks and context mix. An active day is a
    UTC day on which the user started a session; a streak is a run of consecutive active
    days (days and row numbers advance together inside a run, so day minus row number is
    constant per run). -#}
{{ config(materialized='table', pre_hook="{{ planner_without_nested_loops() }}") }}

with as_of as (
    select {{ feature_as_of_date(ref('int_user_days_engagement'), 'session_date') }} as as_of_date
),

user_days as (
    select * from {{ ref('int_user_days_engagement') }}
),

days_in_scope as (
    select
        user_days.*,
        as_of.as_of_date,
        row_number() over (
            partition by user_days.user_id order by user_days.session_date
        ) as active_day_number
    from user_days
    cross join as_of
    where user_days.session_date <= as_of.as_of_date
),

streak_keys_added as (
    select
        *,
        cast({{ dbt.dateadd('day', '-active_day_number', 'session_date') }} as date) as streak_key
    from days_in_scope
),

streaks as (
    select
        user_id,
        streak_key,
        max(session_date) as streak_end_date,
        max(as_of_date) as as_of_date,
        count(*) as streak_days
    from streak_keys_added
    group by
        user_id,
        streak_key
),

streaks_summarised as (
    select
        user_id,
        count(*) as streak_count,
        max(streak_days) as longest_streak_days,
        max(case when streak_end_date = as_of_date then streak_days else 0 end)
            as current_streak_days
    from streaks
    group by user_id
),

activity_summarised as (
    select
        user_id,
        max(as_of_date) as as_of_date,
        min(session_date) as first_active_date,
        max(session_date) as last_active_date,
        count(*) as active_day_count,
        sum(
            case
                when session_date > {{ dbt.dateadd('day', -28, 'as_of_date') }} then 1 else 0
            end
        ) as active_days_last_28d,
        sum(play_count) as play_count,
        sum(skip_count) as skip_count,
        sum(ms_played) as ms_played,
        sum(session_count) as session_count,
        sum(playlist_play_count) as playlist_play_count,
        sum(album_play_count) as album_play_count,
        sum(radio_play_count) as radio_play_count,
        sum(artist_play_count) as artist_play_count,
        sum(collection_play_count) as collection_play_count,
        sum(search_play_count) as search_play_count,
        sum(playlist_skip_count) as playlist_skip_count,
        sum(editorial_playlist_play_count) as editorial_playlist_play_count,
        sum(algorithmic_playlist_play_count) as algorithmic_playlist_play_count,
        sum(user_playlist_play_count) as user_playlist_play_count,
        sum(shuffle_play_count) as shuffle_play_count
    from days_in_scope
    group by user_id
),

features as (
    select
        activity_summarised.user_id,
        activity_summarised.as_of_date,
        activity_summarised.first_active_date,
        activity_summarised.last_active_date,
        activity_summarised.active_day_count,
        activity_summarised.active_days_last_28d,
        cast(activity_summarised.active_days_last_28d as {{ dbt.type_float() }}) / 28
            as active_day_rate_28d,
        streaks_summarised.current_streak_days,
        streaks_summarised.longest_streak_days,
        streaks_summarised.streak_count,
        {{ feature_safe_divide('activity_summarised.active_day_count', 'streaks_summarised.streak_count') }}
            as mean_streak_days,
        {{ feature_safe_divide(
            'activity_summarised.active_day_count',
            dbt.datediff('activity_summarised.first_active_date', 'activity_summarised.as_of_date', 'day')
            ~ ' + 1') }} as streak_consistency_rate,
        {{ dbt.datediff('activity_summarised.first_active_date', 'activity_summarised.as_of_date', 'day') }}
            as days_since_first_active,
        {{ dbt.datediff('activity_summarised.last_active_date', 'activity_summarised.as_of_date', 'day') }}
            as days_since_last_active,
        activity_summarised.play_count,
        cast(activity_summarised.ms_played as {{ dbt.type_float() }}) / 3600000 as hours_played,
        {{ feature_safe_divide('activity_summarised.play_count', 'activity_summarised.active_day_count') }}
            as plays_per_active_day,
        {{ feature_safe_divide('activity_summarised.skip_count', 'activity_summarised.play_count') }}
            as skip_rate,
        {{ feature_safe_divide('activity_summarised.session_count', 'activity_summarised.active_day_count') }}
            as sessions_per_active_day,
        {% for context in ['playlist', 'album', 'radio', 'artist', 'collection', 'search', 'shuffle'] %}
            {{ feature_safe_divide('activity_summarised.' ~ context ~ '_play_count',
                                   'activity_summarised.play_count') }} as {{ context }}_play_share,
        {% endfor %}
        {{ feature_safe_divide(
            'activity_summarised.play_count - activity_summarised.playlist_play_count'
            ~ ' - activity_summarised.album_play_count - activity_summarised.radio_play_count'
            ~ ' - activity_summarised.artist_play_count - activity_summarised.collection_play_count'
            ~ ' - activity_summarised.search_play_count',
            'activity_summarised.play_count') }} as other_context_play_share,
        {% for playlist_type in ['editorial', 'algorithmic', 'user'] %}
            {{ feature_safe_divide('activity_summarised.' ~ playlist_type ~ '_playlist_play_count',
                                   'activity_summarised.playlist_play_count') }}
                as {{ playlist_type }}_playlist_play_share,
        {% endfor %}
        {{ feature_safe_divide('activity_summarised.playlist_skip_count',
                               'activity_summarised.playlist_play_count') }} as playlist_skip_rate
    from activity_summarised
    inner join streaks_summarised
        on activity_summarised.user_id = streaks_summarised.user_id
)

select * from features
