{#- One row per user with a session on or before the as-of day: playlist behaviour (from
    context runs) and session metrics (sessions rebuilt from their runs: duration = latest
    end of a play minus the first start, as in fct_sessions). Incremental by key: a run
    recomputes only the users with a context run on a rebuilt day, or whose newest session
    was on one, from all of their runs (nothing here depends on the as-of day but the days
    in scope). -#}
{{ config(**incremental_by_key(['user_id'], 'first_session_date', 'last_session_date',
                               days_before=session_history_days(),
                               as_of_var='features_as_of_date')) }}
{#- dbt appends the hooks of each config call -#}
{{ config(pre_hook="{{ planner_without_nested_loops() }}") }}
{%- set feature_columns = [
    'first_session_date', 'last_session_date', 'session_count', 'mean_session_duration_seconds',
    'median_session_duration_seconds', 'mean_tracks_per_session', 'mean_context_runs_per_session',
    'mean_seconds_to_first_skip', 'skip_free_session_rate', 'sessions_per_active_day',
    'playlist_run_count', 'playlist_completion_rate', 'mean_playlist_run_length',
    'playlist_engagement_score'
] -%}
{%- set changed_keys = incremental_changed_keys(
    ['user_id'], 'last_session_date', ref('int_context_runs'), 'session_date'
) %}

with as_of as (
    select {{ feature_as_of_date(ref('int_context_runs'), 'session_date') }} as as_of_date
),

context_runs as (
    select * from {{ ref('int_context_runs') }}
),

changed_context_runs as (
    select context_runs.*
    from context_runs
    {{ incremental_changed_keys_filter(changed_keys, ['user_id'], 'context_runs') }}
),

runs_in_scope as (
    select changed_context_runs.*
    from changed_context_runs
    cross join as_of
    where changed_context_runs.session_date <= as_of.as_of_date
),

sessions as (
    select
        session_id,
        user_id,
        session_started_at,
        session_date,
        max(run_ended_at) as session_ended_at,
        min(first_skipped_at) as first_skipped_at,
        sum(play_count) as track_count,
        count(*) as context_run_count
    from runs_in_scope
    group by
        session_id,
        user_id,
        session_started_at,
        session_date
),

session_durations as (
    select
        user_id,
        session_date,
        track_count,
        context_run_count,
        cast(
            {{ epoch_milliseconds('session_ended_at') }} - {{ epoch_milliseconds('session_started_at') }}
            as {{ dbt.type_float() }}
        ) / 1000 as duration_seconds,
        cast(
            {{ epoch_milliseconds('first_skipped_at') }} - {{ epoch_milliseconds('session_started_at') }}
            as {{ dbt.type_float() }}
        ) / 1000 as seconds_to_first_skip
    from sessions
),

sessions_summarised as (
    select
        user_id,
        count(*) as session_count,
        count(distinct session_date) as active_day_count,
        min(session_date) as first_session_date,
        max(session_date) as last_session_date,
        avg(duration_seconds) as mean_session_duration_seconds,
        {{ feature_median('duration_seconds') }} as median_session_duration_seconds,
        avg(cast(track_count as {{ dbt.type_float() }})) as mean_tracks_per_session,
        avg(cast(context_run_count as {{ dbt.type_float() }})) as mean_context_runs_per_session,
        avg(seconds_to_first_skip) as mean_seconds_to_first_skip,
        sum(case when seconds_to_first_skip is null then 1 else 0 end) as skip_free_session_count
    from session_durations
    group by user_id
),

playlist_runs_summarised as (
    select
        user_id,
        count(*) as playlist_run_count,
        sum(case when is_completed then 1 else 0 end) as completed_playlist_run_count,
        count(is_completed) as sized_playlist_run_count,
        sum(play_count) as playlist_play_count,
        sum(skip_count) as playlist_skip_count
    from runs_in_scope
    where context_type = 'playlist'
    group by user_id
),

playlist_rates as (
    select
        user_id,
        playlist_run_count,
        {{ feature_safe_divide('completed_playlist_run_count', 'sized_playlist_run_count') }}
            as playlist_completion_rate,
        {{ feature_safe_divide('playlist_skip_count', 'playlist_play_count') }} as playlist_run_skip_rate,
        {{ feature_safe_divide('playlist_play_count', 'playlist_run_count') }} as mean_playlist_run_length
    from playlist_runs_summarised
),

features as (
    select
        sessions_summarised.user_id,
        sessions_summarised.first_session_date,
        sessions_summarised.last_session_date,
        sessions_summarised.session_count,
        sessions_summarised.mean_session_duration_seconds,
        sessions_summarised.median_session_duration_seconds,
        sessions_summarised.mean_tracks_per_session,
        sessions_summarised.mean_context_runs_per_session,
        sessions_summarised.mean_seconds_to_first_skip,
        {{ feature_safe_divide(
            'sessions_summarised.skip_free_session_count', 'sessions_summarised.session_count') }}
            as skip_free_session_rate,
        {{ feature_safe_divide('sessions_summarised.session_count', 'sessions_summarised.active_day_count') }}
            as sessions_per_active_day,
        coalesce(playlist_rates.playlist_run_count, 0) as playlist_run_count,
        playlist_rates.playlist_completion_rate,
        playlist_rates.mean_playlist_run_length,
        100 * (
            0.5 * playlist_rates.playlist_completion_rate
            + 0.3 * (1 - playlist_rates.playlist_run_skip_rate)
            + 0.2 * least(playlist_rates.mean_playlist_run_length / 10, 1)
        ) as playlist_engagement_score
    from sessions_summarised
    left join playlist_rates
        on sessions_summarised.user_id = playlist_rates.user_id
),

-- incremental: every changed user, one with no session left with a null last day
final as (
    {{ incremental_keyed_rows(changed_keys, ['user_id'], feature_columns, 'features') }}
)

select * from final
