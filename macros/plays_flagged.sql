{#- The select of one half of int_plays_flagged, the events whose play_id hashes even or odd
    (`ids`, key_parity): the parts int_plays_flagged_even_ids and int_plays_flagged_odd_ids,
    of which the view int_plays_flagged is the union. All deliveries of an event are in one
    half, so each half deduplicates alone, and its unique index on play_id still stops a
    build in which an event is two plays (delivered on two days: the deduplication's
    partition includes played_date). The hash filter, like the day filter, is on columns of
    that partition, so both reach the scan of raw.listening_events below its window. The two
    halves build at once, one per core: one model's serial window, joins and insert of every
    event kept the other core idle at the start of every full build (at 1M sessions its
    select and unique index took 49.9 s as one table, 29.2 s as two halves at once). -#}
{% macro plays_flagged(ids) %}
    {%- set parity = 0 if ids == 'even' else 1 %}

with plays as (
    select * from {{ ref('stg_streaming__listening_events') }}
    where
        {{ key_parity('play_id') }} = {{ parity }}
{%- if is_incremental() %}
            and played_date >= {{ incremental_window_start() }}
{%- endif %}
),

users as (
    select user_id from {{ ref('stg_streaming__users') }}
),

tracks as (
    select
        track_id,
        artist_id
    from {{ ref('stg_spotify__tracks') }}
),

references_checked as (
    select
        plays.*,
        tracks.artist_id,
        users.user_id is null as is_unknown_user,
        tracks.track_id is null as is_unknown_track
    from plays
    left join users
        on plays.user_id = users.user_id
    left join tracks
        on plays.track_id = tracks.track_id
),

validated as (
    select
        *,
        (
            not has_negative_ms_played
            and not has_overlong_ms_played
            and not is_future
            and not is_unknown_user
            and not is_unknown_track
        ) as is_valid
    from references_checked
)

select * from validated
{% endmacro %}
