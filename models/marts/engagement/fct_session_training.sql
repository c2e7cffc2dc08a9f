{#- One row per session: the targets duration_seconds and track_count, and only what is
    known when the session starts: its first play (hour, weekday, device, context, playlist
    type, shuffle), the user's tier, and the user's earlier sessions (window frames end at
    `1 preceding`; earlier sessions ended before this one started).

    Incremental by session day (docs/incremental.md): a session's features depend only on
    its own row and its user's earlier sessions, so a change on day D changes sessions from
    D - session_history_days() on (fct_sessions' own rebuild rule) and nothing before. An
    incremental run reads every session of the users with a session in the rebuilt days
    (their whole history, for the running sums) and keeps the rebuilt days' rows.

    Session length is multiplicative (log-linear) in the user's latent effect, so the
    history also enters on the log scale: the mean ln(1 + seconds) of earlier sessions and
    of their intended plays (see plays_before_last_run), multiplied by the weight n / (n + var duration_history_prior_sessions) of n
    earlier sessions. With the weight itself as a feature a linear model shrinks the user's
    mean towards a global mean it fits (w * mean * b + w * c = b * w * (mean - m), m = -c / b),
    so no global mean (which would change with every day) is computed here.

    What persists across a user's sessions is in those log means too: the tier, and the
    device (most listeners use one most of the time). The shrunk shares of the user's earlier
    sessions per device, and the weight of a premium listener's history, let the linear model
    take those effects out of the history instead of counting them twice (web, the fifth
    device, is the weight minus the four shares). -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days())
) }}

{%- set prior_sessions = var('duration_history_prior_sessions') %}
{%- set history_devices = ['desktop', 'mobile', 'smart_speaker', 'tv'] %}

with sessions as (
    select
        session_id,
        user_id,
        session_started_at,
        session_ended_at,
        session_date,
        duration_seconds,
        track_count,
        skip_count,
        first_context_type,
        device
    from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
        where user_id in (
            select rebuilt.user_id
            from {{ ref('fct_sessions') }} as rebuilt
            where {{ incremental_rebuilt_where('rebuilt.session_date', 'rebuilt.user_id') }}
        )
    {% endif %}
),

runs as (
    select
        session_id,
        context_run_number,
        playlist_type,
        playlist_track_count,
        is_shuffle,
        play_count
    from {{ ref('int_context_runs') }}
    {% if is_incremental() %}
        where user_id in (
            select rebuilt.user_id
            from {{ ref('fct_sessions') }} as rebuilt
            where {{ incremental_rebuilt_where('rebuilt.session_date', 'rebuilt.user_id') }}
        )
    {% endif %}
),

first_runs as (
    select
        session_id,
        playlist_type,
        playlist_track_count,
        is_shuffle
    from runs
    where context_run_number = 1
),

last_run_numbered as (
    select
        session_id,
        context_run_number,
        play_count,
        max(context_run_number) over (partition by session_id) as last_context_run_number
    from runs
),

-- plays before the session's last context run (a run is played to its end, so a session
-- stops after the run during which it reached the listener's intended length)
plays_before_last_run as (
    select
        session_id,
        sum(
            case when context_run_number < last_context_run_number then play_count else 0 end
        ) as plays_before_last_run
    from last_run_numbered
    group by session_id
),

users as (
    select
        user_id,
        tier,
        signed_up_date,
        timezone
    from {{ ref('dim_users') }}
),

logs_added as (
    select
        sessions.*,
        ln(1 + sessions.duration_seconds) as log_duration,
        -- the intended length lies in (plays before the last run, plays]: ln of the midpoint
        ln(
            cast(
                plays_before_last_run.plays_before_last_run + 1 + sessions.track_count
                as {{ dbt.type_float() }}
            ) / 2
        ) as log_intended_track_count
    from sessions
    left join plays_before_last_run
        on sessions.session_id = plays_before_last_run.session_id
),

history_added as (
    select
        *,
        row_number() over (
            partition by user_id order by session_started_at, session_id
        ) - 1 as user_prior_session_count,
        avg(duration_seconds) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_mean_duration_seconds,
        avg(cast(track_count as {{ dbt.type_float() }})) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_mean_track_count,
        sum(log_duration) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_log_duration_sum,
        sum(log_intended_track_count) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_log_intended_track_count_sum,
        sum(skip_count) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_skip_count,
        sum(track_count) over (
            partition by user_id order by session_started_at, session_id
            rows between unbounded preceding and 1 preceding
        ) as user_prior_play_count,
        {%- for device in history_devices %}
            sum(case when device = '{{ device }}' then 1 else 0 end) over (
                partition by user_id order by session_started_at, session_id
                rows between unbounded preceding and 1 preceding
            ) as user_prior_{{ device }}_session_count,
        {%- endfor %}
        lag(duration_seconds) over (
            partition by user_id order by session_started_at, session_id
        ) as previous_session_duration_seconds,
        lag(track_count) over (
            partition by user_id order by session_started_at, session_id
        ) as previous_session_track_count,
        lag(session_ended_at) over (
            partition by user_id order by session_started_at, session_id
        ) as previous_session_ended_at,
        min(session_date) over (
            partition by user_id order by session_started_at, session_id rows unbounded preceding
        ) as first_session_date
    from logs_added
),

rebuilt_days as (
    select *
    from history_added
    {% if is_incremental() %}
        where {{ incremental_rebuilt_where('session_date') }}
    {% endif %}
),

final as (
    select
        rebuilt_days.session_id,
        rebuilt_days.user_id,
        rebuilt_days.session_started_at,
        rebuilt_days.session_date,
        -- targets
        rebuilt_days.duration_seconds,
        rebuilt_days.track_count,
        -- known at the start
        users.tier,
        cast(
            {{ hour_of_day(local_timestamp('rebuilt_days.session_started_at', 'users.timezone')) }}
            as {{ dbt.type_int() }}
        ) as start_hour,
        cast(
            {{ iso_day_of_week(local_timestamp('rebuilt_days.session_started_at', 'users.timezone')) }}
            as {{ dbt.type_int() }}
        ) as iso_day_of_week,
        {{ iso_day_of_week(local_timestamp('rebuilt_days.session_started_at', 'users.timezone')) }}
        >= 6 as is_weekend,
        rebuilt_days.device,
        rebuilt_days.first_context_type,
        first_runs.playlist_type as first_playlist_type,
        first_runs.is_shuffle as is_first_run_shuffled,
        -- a playlist run ends at the playlist's last track at the latest, and a session
        -- plays its last run to the end: the first playlist's size bounds the first run
        case
            when first_runs.playlist_track_count > 0
                then ln(cast(first_runs.playlist_track_count as {{ dbt.type_float() }}))
        end as first_playlist_log_track_count,
        cast(
            {{ dbt.datediff('users.signed_up_date', 'rebuilt_days.session_date', 'day') }}
            as {{ dbt.type_int() }}
        ) as days_since_signup,
        cast(
            {{ dbt.datediff('rebuilt_days.first_session_date', 'rebuilt_days.session_date', 'day') }}
            as {{ dbt.type_int() }}
        ) as days_since_first_session,
        cast(rebuilt_days.user_prior_session_count as {{ dbt.type_bigint() }})
            as user_prior_session_count,
        rebuilt_days.user_prior_mean_duration_seconds,
        rebuilt_days.user_prior_mean_track_count,
        {{ feature_safe_divide(
            'rebuilt_days.user_prior_skip_count', 'rebuilt_days.user_prior_play_count') }}
            as user_prior_skip_rate,
        rebuilt_days.previous_session_duration_seconds,
        rebuilt_days.previous_session_track_count,
        cast(
            {{ epoch_milliseconds('rebuilt_days.session_started_at') }}
            - {{ epoch_milliseconds('rebuilt_days.previous_session_ended_at') }}
            as {{ dbt.type_float() }}
        ) / 3600000 as hours_since_previous_session,
        -- the user's latent length on the log scale (see the header)
        cast(rebuilt_days.user_prior_session_count as {{ dbt.type_float() }})
        / (rebuilt_days.user_prior_session_count + {{ prior_sessions }})
            as user_prior_history_weight,
        coalesce(rebuilt_days.user_prior_log_duration_sum, 0)
        / (rebuilt_days.user_prior_session_count + {{ prior_sessions }})
            as user_prior_log_duration_shrunk,
        coalesce(rebuilt_days.user_prior_log_intended_track_count_sum, 0)
        / (rebuilt_days.user_prior_session_count + {{ prior_sessions }})
            as user_prior_log_intended_track_count_shrunk,
        {%- for device in history_devices %}
            cast(coalesce(rebuilt_days.user_prior_{{ device }}_session_count, 0) as {{ dbt.type_float() }})
            / (rebuilt_days.user_prior_session_count + {{ prior_sessions }})
                as user_prior_{{ device }}_share_shrunk,
        {%- endfor %}
        case
            when users.tier = 'premium'
                then
                    cast(rebuilt_days.user_prior_session_count as {{ dbt.type_float() }})
                    / (rebuilt_days.user_prior_session_count + {{ prior_sessions }})
            else 0
        end as user_prior_premium_weight
    from rebuilt_days
    left join first_runs
        on rebuilt_days.session_id = first_runs.session_id
    left join users
        on rebuilt_days.user_id = users.user_id
)

select * from final
