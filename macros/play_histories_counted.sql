{#- The select of int_play_histories_counted. On PostgreSQL, of one of its two parts, the plays
    of the users whose user_id is even or odd (`users`), read from the same half of
    int_plays_sessionized: int_play_histories_counted_even_users and
    int_play_histories_counted_odd_users, of which the view int_play_histories_counted is
    the union. A user's plays and history are all in one half, so each half counts alone;
    the two build at once, one per core: as one model, its serial window work was the full
    build's longest path, alone on one core for the last tenth of the build at 200,000
    sessions. Spark and DuckDB run one query's windows on every core, so there the model is
    one table of every user (`users` none), and two parts would only add a model's overhead
    to every run.

    One row per valid play: what was known about its listener the moment before it started
    (tier, days since signup, and running counts over ALL of the user's earlier plays,
    ordered by played_at, then play_id): the history half of fct_play_skip_features, a view
    that puts it beside the play's own columns from int_plays_sessionized. Kept narrow so the
    full build's longest path (int_plays_flagged, int_plays_sessionized, this) writes a
    fraction of each play, and nothing here waits on the wide rows. An earlier play of the
    same session ended before this one started, and earlier sessions ended more than
    session_gap_minutes before.

    Incremental by session_date, like int_plays_sessionized, so every session is rebuilt
    whole. History = the running totals of the user-day, user-track-day and user-genre-day
    tables before the first rebuilt day, plus windows over the rebuilt plays. A full refresh
    uses the same code with a window starting in 1900 and a row of nulls for the history:
    the windows cover everything, the two paths are one. The day tables are read through
    incremental_history, not ref: only their days before the first rebuilt day, which this
    run's builds of them do not change (incremental_first_rebuilt_day), so this model starts
    as soon as its half of int_plays_sessionized is built, beside them, instead of after the
    slowest of them. Each half reads the day tables whole and keeps its own rebuilt users'
    rows (by user_id first, before the text keys are compared).

    Cost: the windows run on narrow rows (a play's keys, label and energy), sorted once, by
    (user_id, genre, played_at, play_id), then re-sorted within each user only for the
    per-user, per-(user, track) and per-(user, artist) windows (PostgreSQL's incremental
    sort: one user's plays at a time, in memory). The user's order is (session_started_at,
    played_at, play_id): sessions of a user never overlap, so that is the order of their
    plays. Each partitioning is one window node. History joins after the windows, so no
    sort waits on it. Counts stay bigint (a sum of bigint is numeric in PostgreSQL, several
    times slower in the final arithmetic). -#}
{% macro play_histories_counted(users=none) %}
    {%- set plays = ref('int_plays_sessionized_' ~ users ~ '_users') if users
                    else ref('int_plays_sessionized') %}
    {%- set bigint, text, float = dbt.type_bigint(), dbt.type_string(), dbt.type_float() -%}
    {%- set no_history -%}
    select
        cast(null as {{ bigint }}) as play_count,
        cast(null as {{ bigint }}) as skip_count,
        cast(null as {{ bigint }}) as session_count,
        cast(null as {{ bigint }}) as audio_play_count,
        cast(null as {{ float }}) as energy_sum,
        cast(null as {{ bigint }}) as kept_audio_play_count,
        cast(null as {{ float }}) as kept_energy_sum
    {%- endset %}
{%- set earlier_plays = 'partition by user_id order by session_started_at, played_at, play_id'
                        ~ ' rows between unbounded preceding and 1 preceding' %}

-- only what the windows read: sorting narrow rows is several times faster than the plays
with window_inputs as (
    select
        play_id,
        played_date,
        session_date,
        user_id,
        track_id,
        artist_id,
        genre,
        played_at,
        session_started_at,
        skip_flag,
        energy,
        energy * (1 - skip_flag) as kept_energy,
        case when is_session_start then 1 else 0 end as session_start_flag,
        case when has_audio_features then 1 else 0 end as audio_flag,
        case when has_audio_features then 1 - skip_flag else 0 end as kept_audio_flag
    from {{ plays }}
    where {{ incremental_rebuilt_where('session_date') }}
),

-- the pairs the rebuilt plays meet, for the history lookups (a read of its own: with one
-- reference, window_inputs is inlined into the windows, never materialised)
window_keys as (
    select
        user_id,
        track_id,
        artist_id
    from {{ plays }}
    where {{ incremental_rebuilt_where('session_date') }}
),

users as (
    select
        user_id,
        tier,
        signed_up_date
    from {{ ref('stg_streaming__users') }}
),

user_days as (
    {{ incremental_history('int_user_days_engagement', [
        ['user_id', bigint], ['play_count', bigint], ['skip_count', bigint],
        ['session_count', bigint], ['audio_play_count', bigint], ['energy_sum', float],
        ['kept_audio_play_count', bigint], ['kept_energy_sum', float]]) }}
),

window_users as (
    select distinct user_id from window_keys
),

user_track_days_before_window as (
    {{ incremental_history('int_user_track_days_aggregated', [
        ['user_id', bigint], ['track_id', text], ['artist_id', text], ['genre', text],
        ['play_count', bigint], ['skip_count', bigint]]) }}
),

user_genre_days as (
    {{ incremental_history('int_user_genre_days_aggregated', [
        ['user_id', bigint], ['genre', text], ['play_count', bigint], ['skip_count', bigint]]) }}
),

-- the track days of the (user, artist) pairs the rebuilt plays meet, read once for the track
-- and artist history: a track has one artist (raw.tracks.artist_id is required), so the
-- (user, track) pairs are among them. The users first: an integer key drops most of the 14M
-- track days at 1M sessions before the text pairs are hashed (a daily select 11.8 -> 9.9 s).
-- A full build's history is empty.
user_track_days as (
    select user_track_days_before_window.*
    from user_track_days_before_window
    where
        user_track_days_before_window.user_id in (select user_id from window_users)
        and exists (
            select 1 from window_keys
            where
                window_keys.user_id = user_track_days_before_window.user_id
                and window_keys.artist_id = user_track_days_before_window.artist_id
        )
),

user_history as (
    select
        user_days.user_id,
        cast(sum(user_days.play_count) as bigint) as play_count,
        cast(sum(user_days.skip_count) as bigint) as skip_count,
        cast(sum(user_days.session_count) as bigint) as session_count,
        cast(sum(user_days.audio_play_count) as bigint) as audio_play_count,
        sum(user_days.energy_sum) as energy_sum,
        cast(sum(user_days.kept_audio_play_count) as bigint) as kept_audio_play_count,
        sum(user_days.kept_energy_sum) as kept_energy_sum
    from user_days
    inner join window_users
        on user_days.user_id = window_users.user_id
    group by user_days.user_id
),

-- per (user, track) and (user, artist): only the pairs the rebuilt plays meet, so a daily
-- run aggregates the history of the tracks and artists played that day, not of every track
-- the active users ever played
track_history as (
    select
        user_track_days.user_id,
        user_track_days.track_id,
        cast(sum(user_track_days.play_count) as bigint) as play_count,
        cast(sum(user_track_days.skip_count) as bigint) as skip_count
    from user_track_days
    where
        exists (
            select 1 from window_keys
            where
                window_keys.user_id = user_track_days.user_id
                and window_keys.track_id = user_track_days.track_id
        )
    group by
        user_track_days.user_id,
        user_track_days.track_id
),

artist_history as (
    select
        user_id,
        artist_id,
        cast(sum(play_count) as bigint) as play_count,
        cast(sum(skip_count) as bigint) as skip_count
    from user_track_days
    group by
        user_id,
        artist_id
),

-- every genre of the active users, from the genre days (a fifth of the track days): the top
-- genre is the largest of them
genre_history as (
    select
        user_genre_days.user_id,
        user_genre_days.genre,
        cast(sum(user_genre_days.play_count) as bigint) as play_count,
        cast(sum(user_genre_days.skip_count) as bigint) as skip_count
    from user_genre_days
    inner join window_users
        on user_genre_days.user_id = window_users.user_id
    group by
        user_genre_days.user_id,
        user_genre_days.genre
),

top_genre_history as (
    select
        user_id,
        max(play_count) as play_count
    from genre_history
    group by user_id
),

-- running totals over the rebuilt plays, one window node per partitioning. Each per-(user, x)
-- total runs over the play and every play before it (the default frame: the orderings are
-- unique, play_id last) minus the play itself. The genre totals come first (one full sort),
-- so that their history joins in (user, genre) order; the per-user totals, the top genre
-- among them, then re-sort only within each user (an incremental sort: one user's plays at a
-- time, in memory), as do the track and artist totals after them.
genre_windows_added as (
    select
        *,
        row_number() over (
            partition by user_id, genre order by played_at, play_id
        ) - 1 as window_prior_genre_play_count,
        sum(skip_flag) over (
            partition by user_id, genre order by played_at, play_id
        ) - skip_flag as window_prior_genre_skip_count
    from window_inputs
),

genre_history_added as (
    select
        genre_windows_added.*,
        coalesce(genre_history.play_count, 0) + genre_windows_added.window_prior_genre_play_count
            as prior_genre_play_count,
        coalesce(genre_history.skip_count, 0) + genre_windows_added.window_prior_genre_skip_count
            as prior_genre_skip_count
    from genre_windows_added
    left join genre_history
        on
            genre_windows_added.user_id = genre_history.user_id
            and genre_windows_added.genre = genre_history.genre
),

-- over the user's earlier plays (one frame for all, so one pass); the top genre count is the
-- largest running genre count (that play included) of the earlier plays
user_windows_added as (
    select
        *,
        count(*) over ({{ earlier_plays }}) as window_prior_play_count,
        coalesce(sum(skip_flag) over ({{ earlier_plays }}), 0) as window_prior_skip_count,
        coalesce(sum(audio_flag) over ({{ earlier_plays }}), 0) as window_prior_audio_play_count,
        coalesce(sum(energy) over ({{ earlier_plays }}), 0) as window_prior_energy_sum,
        coalesce(sum(kept_audio_flag) over ({{ earlier_plays }}), 0)
            as window_prior_kept_audio_play_count,
        coalesce(sum(kept_energy) over ({{ earlier_plays }}), 0) as window_prior_kept_energy_sum,
        coalesce(sum(session_start_flag) over ({{ earlier_plays }}), 0) + session_start_flag
            as window_session_start_count,
        max(prior_genre_play_count + 1) over ({{ earlier_plays }}) as window_top_genre_play_count
    from genre_history_added
),

-- one CTE per (user, x) key, each over the previous one, with the same running counts
    {%- set pair_keys = [('track', 'track_id'), ('artist', 'artist_id')] %}
    {%- for name, key in pair_keys %}
    {%- set previous = 'user' if loop.first else pair_keys[loop.index0 - 1][0] %}

    {{ name }}_windows_added as (
        select
            *,
            row_number() over (
                partition by user_id, {{ key }} order by played_at, play_id
            ) - 1 as window_prior_{{ name }}_play_count,
            sum(skip_flag) over (
                partition by user_id, {{ key }} order by played_at, play_id
            ) - skip_flag as window_prior_{{ name }}_skip_count
        from {{ previous }}_windows_added
    ),
{%- endfor %}

history_totalled as (
    select
        artist_windows_added.play_id,
        artist_windows_added.user_id,
        artist_windows_added.played_date,
        artist_windows_added.session_date,
        artist_windows_added.energy,
        coalesce(track_history.play_count, 0) + artist_windows_added.window_prior_track_play_count
            as prior_track_play_count,
        coalesce(track_history.skip_count, 0) + artist_windows_added.window_prior_track_skip_count
            as prior_track_skip_count,
        coalesce(artist_history.play_count, 0) + artist_windows_added.window_prior_artist_play_count
            as prior_artist_play_count,
        coalesce(artist_history.skip_count, 0) + artist_windows_added.window_prior_artist_skip_count
            as prior_artist_skip_count,
        artist_windows_added.prior_genre_play_count,
        artist_windows_added.prior_genre_skip_count,
        users.tier,
        users.signed_up_date,
        coalesce(user_history.play_count, 0) + artist_windows_added.window_prior_play_count
            as user_prior_play_count,
        coalesce(user_history.skip_count, 0) + artist_windows_added.window_prior_skip_count
            as user_prior_skip_count,
        coalesce(user_history.session_count, 0) + artist_windows_added.window_session_start_count - 1
            as user_prior_session_count,
        coalesce(user_history.audio_play_count, 0) + artist_windows_added.window_prior_audio_play_count
            as user_prior_audio_play_count,
        coalesce(user_history.energy_sum, 0) + artist_windows_added.window_prior_energy_sum
            as user_prior_energy_sum,
        coalesce(user_history.kept_audio_play_count, 0)
        + artist_windows_added.window_prior_kept_audio_play_count as user_prior_kept_audio_play_count,
        coalesce(user_history.kept_energy_sum, 0) + artist_windows_added.window_prior_kept_energy_sum
            as user_prior_kept_energy_sum,
        greatest(
            coalesce(top_genre_history.play_count, 0),
            coalesce(artist_windows_added.window_top_genre_play_count, 0)
        ) as user_prior_top_genre_play_count
    from artist_windows_added
    left join users
        on artist_windows_added.user_id = users.user_id
{%- if is_incremental() %}
        left join user_history
            on artist_windows_added.user_id = user_history.user_id
        left join top_genre_history
            on artist_windows_added.user_id = top_genre_history.user_id
        left join track_history
            on
                artist_windows_added.user_id = track_history.user_id
                and artist_windows_added.track_id = track_history.track_id
        left join artist_history
            on
                artist_windows_added.user_id = artist_history.user_id
                and artist_windows_added.artist_id = artist_history.artist_id
    {%- else %}
        -- a full refresh has no history (no day before 1900): a row of nulls, which the
        -- database folds into constants, instead of four joins to nothing (3 s of the select
        -- at 200k sessions, on the full build's longest path)
        cross join ({{ no_history }}) as user_history
        cross join ({{ no_history }}) as top_genre_history
        cross join ({{ no_history }}) as track_history
        cross join ({{ no_history }}) as artist_history
    {%- endif %}
),

final as (
    select
        play_id,
        user_id,
        played_date,
        session_date,
        tier,
        cast({{ dbt.datediff('signed_up_date', 'played_date', 'day') }} as integer) as days_since_signup,
        cast(user_prior_play_count as bigint) as user_prior_play_count,
        cast(user_prior_skip_count as bigint) as user_prior_skip_count,
        {{ feature_safe_divide('user_prior_skip_count', 'user_prior_play_count') }} as user_prior_skip_rate,
        cast(user_prior_session_count as bigint) as user_prior_session_count,
        cast(prior_track_play_count as bigint) as user_prior_track_play_count,
        {{ feature_safe_divide('prior_track_skip_count', 'prior_track_play_count') }}
            as user_prior_track_skip_rate,
        cast(prior_artist_play_count as bigint) as user_prior_artist_play_count,
        {{ feature_safe_divide('prior_artist_skip_count', 'prior_artist_play_count') }}
            as user_prior_artist_skip_rate,
        prior_artist_play_count = 0 as is_new_artist,
        cast(prior_genre_play_count as bigint) as user_prior_genre_play_count,
        {{ feature_safe_divide('prior_genre_play_count', 'user_prior_play_count') }}
            as user_prior_genre_play_share,
        {{ feature_safe_divide('prior_genre_skip_count', 'prior_genre_play_count') }}
            as user_prior_genre_skip_rate,
        cast(user_prior_top_genre_play_count as bigint) as user_prior_top_genre_play_count,
        prior_genre_play_count > 0 and prior_genre_play_count = user_prior_top_genre_play_count
            as is_prior_top_genre,
        {{ feature_safe_divide('user_prior_energy_sum', 'user_prior_audio_play_count') }}
            as user_prior_mean_energy,
        abs(energy - {{ feature_safe_divide('user_prior_energy_sum', 'user_prior_audio_play_count') }})
            as energy_distance_from_prior_mean,
        {{ feature_safe_divide('user_prior_kept_energy_sum', 'user_prior_kept_audio_play_count') }}
            as user_prior_kept_mean_energy,
        {{ feature_safe_divide(
            'user_prior_energy_sum - user_prior_kept_energy_sum',
            'user_prior_audio_play_count - user_prior_kept_audio_play_count'
        ) }} as user_prior_skipped_mean_energy
    from history_totalled
)

select * from final
{% endmacro %}


{#- The incremental config of int_play_histories_counted and its parts: by session_date, whole
    sessions, keyed by play_id, with the day tables the select reads through
    incremental_history as its history. -#}
{% macro play_histories_incremental() %}
    {{ return(incremental_by_day(
        'session_date', days_before=session_history_days(), key='play_id',
        history=['int_user_days_engagement', 'int_user_genre_days_aggregated',
                 'int_user_track_days_aggregated']
    )) }}
{% endmacro %}
