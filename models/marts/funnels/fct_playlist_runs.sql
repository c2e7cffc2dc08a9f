{#- One row per playlist listen (run): how far the listener got. A run reached track k of
    the funnel when it played at least k tracks or finished the playlist (so stages never
    grow, even for playlists shorter than k); furthest_stage_name is its last stage.
    Finished: the run played as many tracks as the playlist holds, or an unshuffled run
    played the playlist's last position. A run that ends on the last play of a session with
    at least var funnel_session_play_cap plays (the player's cap) is cut, not abandoned: the
    drop-off mart treats it as censored. Incremental by session_date like its input; tier
    and playlist type are those current when the session day was (re)built.

    A run starts at the session's first play, at a change of context (the core's
    run_play_number = 1), or at a play the listener started (reason_start in var
    funnel_run_start_reasons: appload, clickrow, playbtn), so two listens of one playlist
    back to back are two runs. Inside a run reason_start is trackdone, fwdbtn or backbtn. Both
    windows read only playlist plays, partitioned by session; runs never cross sessions, so
    rebuilding whole session days is exact. A session is (user_id, session_started_at) here, the
    key its session_id hashes: the sort of every playlist play then compares integers and
    timestamps, not 32-character hashes, and the rows it sorts are a third narrower (at 1M
    sessions 9M plays sorted in memory, not 1 GB on disk; the select alone 24.0 s, against
    32.2 s by session_id); session_id comes per run from fct_sessions. Plays of an unknown
    playlist (sources such as Spotify's MSSD give the context type but no id) are left out:
    without the playlist there is no length, so no funnel. The plays with their runs are not a
    table of their own: this model is their only reader, and writing them cost the full build a
    60 % copy of the plays. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days())
) }}
{%- set stage_tracks = funnel_stage_tracks() -%}
{%- set play_cap = var('funnel_session_play_cap') -%}
{%- set run_start_list = "'" ~ (var('funnel_run_start_reasons') | join("', '")) ~ "'" -%}

with plays as (
    select
        user_id,
        session_started_at,
        context_id as playlist_id,
        played_at,
        session_date,
        session_play_number,
        run_play_number,
        position_in_context,
        reason_start,
        is_shuffle,
        is_skipped
    from {{ ref('int_plays_sessionized') }}
    where
        context_type = 'playlist'
        {% if is_incremental() %}
            and {{ incremental_rebuilt_where('session_date') }}
        {% endif %}
        and context_id is not null
),

run_starts_flagged as (
    select
        *,
        (
            run_play_number = 1
            or coalesce(reason_start in ({{ run_start_list }}), false)
        ) as is_run_start
    from plays
),

runs_numbered as (
    select
        *,
        sum(case when is_run_start then 1 else 0 end) over (
            partition by user_id, session_started_at order by session_play_number
            rows unbounded preceding
        ) as session_playlist_run_number
    from run_starts_flagged
),

-- a run's first and last plays flagged in one window node, so that one aggregate over its
-- sorted output has every column of the run: joining the runs back to their plays for the
-- last position had materialised and re-read every playlist play (the select at 1M
-- sessions, alone: 39-43 s before, 29-30 s)
playlist_plays as (
    select
        *,
        (row_number() over run_plays) = 1 as is_run_first_play,
        (lead(session_play_number) over run_plays) is null as is_run_last_play
    from runs_numbered
    window run_plays as (
        partition by user_id, session_started_at, session_playlist_run_number
        order by session_play_number
    )
),

sessions as (
    select
        session_id,
        user_id,
        session_started_at,
        track_count
    from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
        where {{ incremental_rebuilt_where('session_date') }}
    {% endif %}
),

playlists as (
    select
        playlist_id,
        playlist_type,
        track_count
    from {{ ref('dim_playlists') }}
),

users as (
    select
        user_id,
        tier
    from {{ ref('dim_users') }}
),

runs_aggregated as (
    select
        user_id,
        session_started_at,
        session_playlist_run_number,
        max(playlist_id) as playlist_id,
        min(played_at) as run_started_at,
        max(session_date) as session_date,
        min(session_play_number) as first_session_play_number,
        max(session_play_number) as last_session_play_number,
        count(*) as run_track_count,
        sum(case when is_skipped then 1 else 0 end) as skip_count,
        max(case when is_shuffle then 1 else 0 end) as shuffle_flag,
        max(case when is_run_first_play then position_in_context end)
            as first_position_in_context,
        max(case when is_run_first_play then reason_start end) as start_reason,
        max(case when is_run_last_play then position_in_context end) as last_position_in_context
    from playlist_plays
    group by
        user_id,
        session_started_at,
        session_playlist_run_number
),

joined as (
    select
        runs_aggregated.*,
        sessions.session_id,
        runs_aggregated.shuffle_flag = 1 as is_shuffle,
        coalesce(playlists.playlist_type, 'unknown') as playlist_type,
        playlists.track_count as playlist_track_count,
        coalesce(users.tier, 'unknown') as tier,
        sessions.track_count as session_track_count
    from runs_aggregated
    left join playlists
        on runs_aggregated.playlist_id = playlists.playlist_id
    left join users
        on runs_aggregated.user_id = users.user_id
    left join sessions
        on
            runs_aggregated.user_id = sessions.user_id
            and runs_aggregated.session_started_at = sessions.session_started_at
),

outcomes_flagged as (
    select
        *,
        coalesce(
            run_track_count >= playlist_track_count
            or (shuffle_flag = 0 and last_position_in_context = playlist_track_count),
            false
        ) as is_finished,
        {% if play_cap is not none -%}
            coalesce(
                last_session_play_number = session_track_count
                and session_track_count >= {{ play_cap | int }},
                false
            )
        {%- else -%}
            false
        {%- endif %} as is_cut_at_session_cap
    from joined
),

final as (
    select
        {{ surrogate_key(['session_id', 'session_playlist_run_number']) }} as playlist_run_id,
        session_id,
        user_id,
        playlist_id,
        playlist_type,
        tier,
        run_started_at,
        session_date,
        cast(session_playlist_run_number as {{ dbt.type_int() }}) as session_playlist_run_number,
        cast(first_session_play_number as {{ dbt.type_int() }}) as first_session_play_number,
        cast(run_track_count as {{ dbt.type_int() }}) as run_track_count,
        cast(playlist_track_count as {{ dbt.type_int() }}) as playlist_track_count,
        cast(first_position_in_context as {{ dbt.type_int() }}) as first_position_in_context,
        cast(last_position_in_context as {{ dbt.type_int() }}) as last_position_in_context,
        start_reason,
        is_shuffle,
        cast(skip_count as {{ dbt.type_int() }}) as skip_count,
        case
            when is_finished then 'finished'
            {%- for k in stage_tracks | reverse %}
                when run_track_count >= {{ k }} then 'reached_track_{{ k }}'
            {%- endfor %}
            else 'started'
        end as furthest_stage_name,
        is_finished,
        is_cut_at_session_cap
    from outcomes_flagged
)

select * from final
