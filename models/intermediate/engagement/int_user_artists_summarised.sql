{#- One row per user and artist ever played: first and newest session day, plays and distinct
    tracks, summed over int_user_track_days_aggregated (up to var features_as_of_date when
    set). State for the user features (int_user_genre_diversity), kept by key: an incremental
    run recomputes only the (user, artist) pairs a change touched (incremental_by_key). A
    track has one artist, so the user's distinct tracks are the sum of track_count: no
    per-(user, track) state is needed. -#}
{{ config(**incremental_by_key(['user_id', 'artist_id'], 'first_played_date', 'last_played_date',
                               days_before=session_history_days(),
                               as_of_var='features_as_of_date')) }}
{%- set changed_keys = incremental_changed_keys(
    ['user_id', 'artist_id'], 'last_played_date', ref('int_user_track_days_aggregated'), 'session_date'
) %}

with user_track_days as (
    select
        user_id,
        artist_id,
        track_id,
        genre,
        session_date,
        play_count
    from {{ ref('int_user_track_days_aggregated') }}
    {% if var('features_as_of_date') %}
        where session_date <= {{ feature_as_of_date(none, none) }}
    {% endif %}
),

-- one sort-based aggregate: a hash aggregate per (user, artist, track) and then per (user,
-- artist) was twice as slow (2.2M groups from 2.9M rows at 200k sessions barely aggregate)
summarised as (
    select
        user_id,
        artist_id,
        max(genre) as genre,
        min(session_date) as first_played_date,
        max(session_date) as last_played_date,
        -- bigint, not the numeric a sum gives: int_user_genre_diversity sums it over 6M rows
        -- at 1M sessions, about twice as fast
        cast(sum(play_count) as bigint) as play_count,
        count(distinct track_id) as track_count
    from user_track_days
    {{ incremental_changed_keys_filter(changed_keys, ['user_id', 'artist_id'], 'user_track_days') }}
    group by
        user_id,
        artist_id
),

-- incremental: every changed pair, one with no play left with a null last day
final as (
    {{ incremental_keyed_rows(
        changed_keys, ['user_id', 'artist_id'],
        ['genre', 'first_played_date', 'last_played_date', 'play_count', 'track_count'], 'summarised'
    ) }}
)

select * from final
