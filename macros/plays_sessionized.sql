{#- The select of one half of int_plays_sessionized, the plays of the users whose user_id is
    even or odd (`users`): the parts int_plays_sessionized_even_users and
    int_plays_sessionized_odd_users, of which the view int_plays_sessionized is the union.
    A user's plays are all in one half, so each half sessionizes alone; the two build at
    once, one per core, where one model's serial window work kept the other core idle on the
    full build's longest path.

    Sessions, and what is known about each play: a play starts a new session when it starts
    more than session_gap_minutes after the latest end (start + ms_played) of all the user's
    earlier plays. Measuring from the end, not the start, keeps a long track followed by a
    short pause in one session; the running maximum of ends keeps overlapping plays (a
    negative gap) in one session.

    Every window below shares one ordering (user_id, played_at, play_id), so the database
    sorts the plays once; per-session and per-run numbers (and the skips earlier in the
    session, a feature of fct_play_skip_features) are differences of per-user running
    numbers instead of windows partitioned by session.

    After the windows, each play gets its track's genre (dim_tracks' rule, repeated from
    staging so intermediate models read no marts: the artist's primary genre, else
    'unknown'), audio features and popularity, its playlist's type and size, and its hour and
    weekday on the listener's clock (users.timezone; UTC when unknown). Joined here, on the
    sorted rows, not in a model of their own: every play model downstream reads these, and a
    second 15M-row table with the same plays cost the full build a write and a read of all
    of them (and a step on the longest path to int_play_histories_counted).

    Incremental runs rebuild whole sessions keyed on the day the session started: every
    session from the first changed play day on, and, from the start day of the earliest
    session a change can touch (at most session_history_days() before it), the sessions of
    the users with one that reaches the change (incremental_rebuilt_where). Those users'
    plays are read that many more days earlier, enough for any earlier play (at most
    max_ms_played_hours long) that could still reach into their sessions within the gap;
    the other users' from the first changed day (their earlier plays end more than the gap
    before it). -#}
{% macro plays_sessionized(users) %}
    {%- set history_days = session_history_days() -%}
    {%- set earlier_plays = 'partition by user_id order by played_at, play_id'
                            ~ ' rows between unbounded preceding and 1 preceding' %}

with plays as (
    select
        play_id,
        user_id,
        track_id,
        artist_id,
        played_at,
        played_date,
        ended_at,
        ms_played,
        context_type,
        context_id,
        position_in_context,
        reason_start,
        reason_end,
        is_shuffle,
        device,
        is_skipped,
        source_skipped,
        source_skip_label
    from {{ ref('int_plays_flagged') }}
    where
        is_valid
        and user_id % 2 {{ '=' if users == 'even' else '!=' }} 0
        {% if is_incremental() %}
            and {{ incremental_rebuilt_where('played_date', days_earlier=history_days) }}
{% endif %}
),

tracks as (
    select
        track_id,
        artist_id,
        duration_ms,
        popularity
    from {{ ref('stg_spotify__tracks') }}
),

audio_features as (
    select
        track_id,
        danceability,
        energy,
        valence,
        acousticness,
        instrumentalness,
        speechiness,
        liveness,
        loudness_db,
        tempo_bpm
    from {{ ref('stg_spotify__audio_features') }}
),

primary_genres as (
    select
        artist_id,
        max(genre) as genre
    from {{ ref('stg_spotify__artist_genres') }}
    where is_primary_genre
    group by artist_id
),

users as (
    select
        user_id,
        timezone
    from {{ ref('stg_streaming__users') }}
),

playlists as (
    select
        playlist_id,
        playlist_type
    from {{ ref('stg_spotify__playlists') }}
),

playlist_sizes as (
    select
        playlist_id,
        count(*) as playlist_track_count
    from {{ ref('stg_spotify__playlist_tracks') }}
    group by playlist_id
),

-- every function over the same window, so PostgreSQL computes them in one pass: the frame
-- (the user's earlier plays) makes last_value the previous play's value and count the
-- number of earlier plays
previous_end_added as (
    select
        *,
        max(ended_at) over ({{ earlier_plays }}) as previous_ended_at,
        last_value(context_type) over ({{ earlier_plays }}) as previous_context_type,
        last_value(context_id) over ({{ earlier_plays }}) as previous_context_id,
        last_value(is_skipped) over ({{ earlier_plays }}) as previous_is_skipped,
        coalesce(
            sum(case when is_skipped then 1 else 0 end) over ({{ earlier_plays }}), 0
        ) as user_prior_skip_count,
        count(*) over ({{ earlier_plays }}) + 1 as user_play_number
    from plays
),

session_starts_flagged as (
    select
        *,
        coalesce(
            played_at
            > {{ add_milliseconds('previous_ended_at', var('session_gap_minutes') * 60000) }},
            true
        ) as is_session_start
    from previous_end_added
),

run_starts_flagged as (
    select
        *,
        -- a context run: consecutive plays of one context (type and id) inside a session
        (
            is_session_start
            or coalesce(context_type, '') != coalesce(previous_context_type, '')
            or coalesce(context_id, '') != coalesce(previous_context_id, '')
        ) as is_run_start
    from session_starts_flagged
),

running_counts_added as (
    select
        *,
        max(case when is_session_start then played_at end) over (
            partition by user_id order by played_at, play_id rows unbounded preceding
        ) as session_started_at,
        max(case when is_session_start then user_play_number end) over (
            partition by user_id order by played_at, play_id rows unbounded preceding
        ) as session_first_play_number,
        max(case when is_run_start then user_play_number end) over (
            partition by user_id order by played_at, play_id rows unbounded preceding
        ) as run_first_play_number,
        sum(case when is_run_start then 1 else 0 end) over (
            partition by user_id order by played_at, play_id rows unbounded preceding
        ) as user_run_number
    from run_starts_flagged
),

session_run_base_added as (
    select
        *,
        max(case when is_session_start then user_run_number end) over (
            partition by user_id order by played_at, play_id rows unbounded preceding
        ) as session_first_run_number,
        max(case when is_session_start then user_prior_skip_count end) over (
            partition by user_id order by played_at, play_id rows unbounded preceding
        ) as session_first_prior_skip_count
    from running_counts_added
),

numbered as (
    select
        {{ surrogate_key(['user_id', epoch_milliseconds('session_started_at')]) }} as session_id,
        play_id,
        user_id,
        track_id,
        artist_id,
        played_at,
        played_date,
        ended_at,
        ms_played,
        context_type,
        context_id,
        position_in_context,
        reason_start,
        reason_end,
        is_shuffle,
        device,
        is_skipped,
        source_skipped,
        source_skip_label,
        session_started_at,
        cast(session_started_at as date) as session_date,
        is_session_start,
        user_play_number - session_first_play_number + 1 as session_play_number,
        user_run_number - session_first_run_number + 1 as context_run_number,
        user_play_number - run_first_play_number + 1 as run_play_number,
        cast(
            user_prior_skip_count - session_first_prior_skip_count as {{ dbt.type_bigint() }}
        ) as session_prior_skip_count,
        case when not is_session_start then previous_is_skipped end as is_previous_play_skipped,
        case
            when not is_session_start
                then cast(
                    {{ epoch_milliseconds('played_at') }} - {{ epoch_milliseconds('previous_ended_at') }}
                    as {{ dbt.type_float() }}
                ) / 1000
        end as gap_seconds
    from session_run_base_added
),

-- plays of sessions that started before the window were only read as history
sessions_in_window as (
    select * from numbered
    {% if is_incremental() %}
        where {{ incremental_rebuilt_where('session_date') }}
{% endif %}
),

-- what each track and each playlist brings, looked up once per play: three small lookups
-- joined to the plays instead of six (every join copies the wide sorted rows once more).
-- A track has one artist (raw.tracks.artist_id is required), the plays' artist_id is it.
track_lookup as (
    select
        tracks.track_id,
        primary_genres.genre,
        tracks.duration_ms as track_duration_ms,
        tracks.popularity as track_popularity,
        audio_features.track_id is not null as has_audio_features,
        audio_features.danceability,
        audio_features.energy,
        audio_features.valence,
        audio_features.acousticness,
        audio_features.instrumentalness,
        audio_features.speechiness,
        audio_features.liveness,
        audio_features.loudness_db,
        audio_features.tempo_bpm
    from tracks
    left join audio_features
        on tracks.track_id = audio_features.track_id
    left join primary_genres
        on tracks.artist_id = primary_genres.artist_id
),

-- a playlist may have a type and no tracks or tracks and no row in playlists. A union, not a
-- full outer join: on the join's coalesced key PostgreSQL hashed all the plays instead of
-- the 400 playlists (1-2 s more at 200k sessions, and the plays left in hash order)
playlist_lookup as (
    select
        playlist_id,
        max(playlist_type) as playlist_type,
        max(playlist_track_count) as playlist_track_count
    from (
        select
            playlist_id,
            playlist_type,
            cast(null as {{ dbt.type_bigint() }}) as playlist_track_count
        from playlists
        union all
        select
            playlist_id,
            cast(null as {{ dbt.type_string() }}) as playlist_type,
            playlist_track_count
        from playlist_sizes
    ) as playlist_parts
    group by playlist_id
),

-- every valid play has a known user and track (int_plays_flagged): the joins keep all plays
enriched as (
    select
        sessions_in_window.*,
        coalesce(track_lookup.genre, 'unknown') as genre,
        track_lookup.track_duration_ms,
        track_lookup.track_popularity,
        coalesce(track_lookup.has_audio_features, false) as has_audio_features,
        track_lookup.danceability,
        track_lookup.energy,
        track_lookup.valence,
        track_lookup.acousticness,
        track_lookup.instrumentalness,
        track_lookup.speechiness,
        track_lookup.liveness,
        track_lookup.loudness_db,
        track_lookup.tempo_bpm,
        playlist_lookup.playlist_type,
        playlist_lookup.playlist_track_count,
        users.timezone is not null as is_local_time,
        {{ hour_of_day(local_timestamp('sessions_in_window.played_at', 'users.timezone')) }}
            as hour_of_day,
        {{ iso_day_of_week(local_timestamp('sessions_in_window.played_at', 'users.timezone')) }}
            as iso_day_of_week,
        {{ hour_of_day(local_timestamp('sessions_in_window.session_started_at', 'users.timezone')) }}
            as session_start_hour,
        case when sessions_in_window.is_skipped then 1 else 0 end as skip_flag
    from sessions_in_window
    left join track_lookup
        on sessions_in_window.track_id = track_lookup.track_id
    left join users
        on sessions_in_window.user_id = users.user_id
    left join playlist_lookup
        on
            sessions_in_window.context_type = 'playlist'
            and sessions_in_window.context_id = playlist_lookup.playlist_id
)

select * from enriched
{% endmacro %}
