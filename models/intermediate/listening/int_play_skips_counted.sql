{#- Plays, skips and source skips per day and value of each reporting dimension (genre, hour,
    weekday, tier, context, position band): the state fct_skip_rates sums, so that a daily run
    counts only the rebuilt days. Incremental by played_date, like fct_plays. The genre and
    tier are those dim_tracks and dim_users hold when the day is built; a users or tracks
    load touches every day (docs/incremental.md), so every day is rebuilt with the new ones
    and a tier change moves all of the user's plays, as a full build would. The plays are
    counted once per combination of all six dimensions, then that small table is unpivoted. -#}
{{ config(materialized='incremental', **incremental_by_day('played_date')) }}

with plays as (
    select
        played_date,
        track_id,
        user_id,
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

tracks as (
    select
        track_id,
        genre
    from {{ ref('dim_tracks') }}
),

users as (
    select
        user_id,
        tier
    from {{ ref('dim_users') }}
),

plays_described as (
    select
        plays.played_date,
        coalesce(tracks.genre, 'unknown') as genre,
        lpad(cast(plays.hour_of_day as {{ dbt.type_string() }}), 2, '0') as hour_of_day,
        case plays.iso_day_of_week
            when 1 then '1-mon'
            when 2 then '2-tue'
            when 3 then '3-wed'
            when 4 then '4-thu'
            when 5 then '5-fri'
            when 6 then '6-sat'
            when 7 then '7-sun'
        end as weekday_label,
        users.tier,
        coalesce(plays.context_type, 'unknown') as context_type,
        -- zero-padded bands sort in order as text
        case
            when plays.session_play_number = 1 then '01'
            when plays.session_play_number <= 5 then '02-05'
            when plays.session_play_number <= 10 then '06-10'
            when plays.session_play_number <= 20 then '11-20'
            else '21+'
        end as position_band,
        case when plays.is_skipped then 1 else 0 end as skip_flag,
        case when plays.source_skipped then 1 else 0 end as source_skip_flag,
        case when plays.source_skipped is not null then 1 else 0 end as source_labelled_flag
    from plays
    left join tracks
        on plays.track_id = tracks.track_id
    left join users
        on plays.user_id = users.user_id
),

combinations_counted as (
    select
        played_date,
        genre,
        hour_of_day,
        weekday_label,
        tier,
        context_type,
        position_band,
        count(*) as play_count,
        sum(skip_flag) as skip_count,
        sum(source_skip_flag) as source_skip_count,
        sum(source_labelled_flag) as source_labelled_play_count
    from plays_described
    group by
        played_date,
        genre,
        hour_of_day,
        weekday_label,
        tier,
        context_type,
        position_band
),

unpivoted as (
    {{ segment_rows('combinations_counted', [
        ('genre', 'genre'), ('hour_of_day', 'hour_of_day'), ('weekday', 'weekday_label'),
        ('tier', 'tier'), ('context_type', 'context_type'), ('position_band', 'position_band'),
    ]) }}
),

aggregated as (
    select
        played_date,
        segment_type as dimension,
        segment_value as dimension_value,
        cast(sum(play_count) as {{ dbt.type_bigint() }}) as play_count,
        cast(sum(skip_count) as {{ dbt.type_bigint() }}) as skip_count,
        cast(sum(source_skip_count) as {{ dbt.type_bigint() }}) as source_skip_count,
        cast(sum(source_labelled_play_count) as {{ dbt.type_bigint() }}) as source_labelled_play_count
    from unpivoted
    group by
        played_date,
        segment_type,
        segment_value
)

select * from aggregated
