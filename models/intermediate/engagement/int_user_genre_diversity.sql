{#- One row per user with a play on or before the as-of day: diversity of genres and
    artists, from the per-(user, artist) state (incremental by key) and the user x genre x
    day table, so a run sums those, not every user x track x day. A track's genre is its
    artist's primary genre, so artists nest in genres.
    Exploration: a play is exploratory when it is the user's first play of its artist (or
    genre), so the number of exploratory plays is the number of distinct artists (genres)
    whose first play falls in the period.

    Incremental by key (incremental_by_key): a run recomputes only the users with a play on
    a rebuilt day or whose newest play was on one, and the users whose 28-day counts move
    with the as-of day: those with a play on a day that left (or re-entered) the 28 days
    since the as-of day of the build before, the newest last_played_date it stored (the
    newest day of data then). Every other user's row depends on nothing that changed. -#}
{{ config(**incremental_by_key(['user_id'], 'first_played_date', 'last_played_date',
                               days_before=session_history_days(),
                               as_of_var='features_as_of_date')) }}
{#- dbt appends the hooks of each config call -#}
{{ config(pre_hook="{{ planner_without_nested_loops() }}") }}
{%- set as_of_date = feature_as_of_date(ref('int_user_track_days_aggregated'), 'session_date') -%}
{%- set changed_keys = incremental_changed_keys(
    ['user_id'], 'last_played_date', ref('int_user_days_engagement'), 'session_date'
) %}
{%- if changed_keys %}
    {%- set built_as_of_date = '(select max(last_played_date) from ' ~ this ~ ')' -%}
    {%- set changed_keys -%}
        {{ changed_keys }}
        union
        select user_id
        from {{ ref('int_user_days_engagement') }}
        where
            session_date > {{ dbt.dateadd('day', -28, 'least(' ~ built_as_of_date ~ ', ' ~ as_of_date ~ ')') }}
            and session_date <= {{ dbt.dateadd(
                'day', -28, 'greatest(' ~ built_as_of_date ~ ', ' ~ as_of_date ~ ')') }}
    {%- endset %}
{%- endif %}
{%- set feature_columns = [
    'first_played_date', 'last_played_date', 'genre_count', 'genre_entropy',
    'genre_entropy_normalised', 'top_genre_play_share', 'artist_count', 'top_artist_play_share',
    'artist_hhi', 'distinct_track_count', 'track_repeat_rate', 'artist_exploration_ratio',
    'genre_exploration_ratio', 'artist_exploration_ratio_28d', 'genre_exploration_ratio_28d'
] -%}

{#- the changed users are read once, by the three inputs' filters and the final join -#}
{%- set changed_users = 'select user_id from changed_users' if changed_keys else none %}

with as_of as (
    select {{ as_of_date }} as as_of_date
),
{%- if changed_keys %}

    changed_users as (
        {{ changed_keys }}
    ),
{%- endif %}

-- per (user, artist) state, summed up to the as-of day, for the per-user sums
user_artists as (
    select
        user_id,
        artist_id,
        genre,
        first_played_date,
        last_played_date,
        play_count,
        track_count
    from {{ ref('int_user_artists_summarised') }}
),

changed_user_artists as (
    select user_artists.*
    from user_artists
    {{ incremental_changed_keys_filter(changed_users, ['user_id'], 'user_artists') }}
),

-- the per-(user, genre) sums from the genre days: half the rows of the artist state, which a
-- second read would cost (6M rows at 1M sessions)
user_genre_days as (
    select
        user_id,
        genre,
        session_date,
        play_count
    from {{ ref('int_user_genre_days_aggregated') }}
),

changed_user_genre_days as (
    select user_genre_days.*
    from user_genre_days
    {{ incremental_changed_keys_filter(changed_users, ['user_id'], 'user_genre_days') }}
),

user_genre_days_in_scope as (
    select changed_user_genre_days.*
    from changed_user_genre_days
    cross join as_of
    where changed_user_genre_days.session_date <= as_of.as_of_date
),

user_days as (
    select
        user_id,
        session_date,
        play_count
    from {{ ref('int_user_days_engagement') }}
),

changed_user_days as (
    select user_days.*
    from user_days
    {{ incremental_changed_keys_filter(changed_users, ['user_id'], 'user_days') }}
),

recent_plays as (
    select
        changed_user_days.user_id,
        sum(changed_user_days.play_count) as play_count_last_28d
    from changed_user_days
    cross join as_of
    where
        changed_user_days.session_date > {{ dbt.dateadd('day', -28, 'as_of.as_of_date') }}
        and changed_user_days.session_date <= as_of.as_of_date
    group by changed_user_days.user_id
),

artists_summarised as (
    select
        changed_user_artists.user_id,
        min(changed_user_artists.first_played_date) as first_played_date,
        max(changed_user_artists.last_played_date) as last_played_date,
        sum(changed_user_artists.play_count) as play_count,
        sum(changed_user_artists.track_count) as distinct_track_count,
        count(*) as artist_count,
        max(changed_user_artists.play_count) as top_artist_play_count,
        sum(
            cast(changed_user_artists.play_count as {{ dbt.type_float() }}) * changed_user_artists.play_count
        ) as artist_play_count_square_sum,
        sum(
            case
                when
                    changed_user_artists.first_played_date
                    > {{ dbt.dateadd('day', -28, 'as_of.as_of_date') }}
                    then 1
                else 0
            end
        ) as new_artist_count_last_28d
    from changed_user_artists
    cross join as_of
    group by changed_user_artists.user_id
),

genres as (
    select
        user_id,
        genre,
        min(session_date) as first_played_date,
        sum(play_count) as play_count
    from user_genre_days_in_scope
    group by
        user_id,
        genre
),

genres_summarised as (
    select
        genres.user_id,
        count(*) as genre_count,
        max(genres.play_count) as top_genre_play_count,
        sum({{ feature_entropy_term('genres.play_count', 'artists_summarised.play_count') }})
            as genre_entropy,
        sum(
            case
                when genres.first_played_date > {{ dbt.dateadd('day', -28, 'as_of.as_of_date') }}
                    then 1
                else 0
            end
        ) as new_genre_count_last_28d
    from genres
    inner join artists_summarised
        on genres.user_id = artists_summarised.user_id
    cross join as_of
    group by genres.user_id
),

user_totals as (
    select
        artists_summarised.user_id,
        artists_summarised.play_count,
        coalesce(recent_plays.play_count_last_28d, 0) as play_count_last_28d,
        artists_summarised.distinct_track_count
    from artists_summarised
    left join recent_plays
        on artists_summarised.user_id = recent_plays.user_id
),

features as (
    select
        user_totals.user_id,
        artists_summarised.first_played_date,
        artists_summarised.last_played_date,
        genres_summarised.genre_count,
        genres_summarised.genre_entropy,
        -- evenly spread plays give exactly 1 in theory and 1 + 2e-16 in floating point
        case
            when genres_summarised.genre_count > 1
                then least(genres_summarised.genre_entropy / ln(genres_summarised.genre_count), 1)
            else 0
        end as genre_entropy_normalised,
        {{ feature_safe_divide('genres_summarised.top_genre_play_count', 'user_totals.play_count') }}
            as top_genre_play_share,
        artists_summarised.artist_count,
        {{ feature_safe_divide('artists_summarised.top_artist_play_count', 'user_totals.play_count') }}
            as top_artist_play_share,
        artists_summarised.artist_play_count_square_sum
        / (cast(user_totals.play_count as {{ dbt.type_float() }}) * user_totals.play_count)
            as artist_hhi,
        user_totals.distinct_track_count,
        1 - {{ feature_safe_divide('user_totals.distinct_track_count', 'user_totals.play_count') }}
            as track_repeat_rate,
        {{ feature_safe_divide('artists_summarised.artist_count', 'user_totals.play_count') }}
            as artist_exploration_ratio,
        {{ feature_safe_divide('genres_summarised.genre_count', 'user_totals.play_count') }}
            as genre_exploration_ratio,
        {{ feature_safe_divide('artists_summarised.new_artist_count_last_28d',
                               'user_totals.play_count_last_28d') }}
            as artist_exploration_ratio_28d,
        {{ feature_safe_divide('genres_summarised.new_genre_count_last_28d',
                               'user_totals.play_count_last_28d') }}
            as genre_exploration_ratio_28d
    from user_totals
    inner join artists_summarised
        on user_totals.user_id = artists_summarised.user_id
    inner join genres_summarised
        on user_totals.user_id = genres_summarised.user_id
),

-- incremental: every changed user, one with no play left with a null last day
final as (
    {{ incremental_keyed_rows(changed_users, ['user_id'], feature_columns, 'features') }}
)

select * from final
