{#- Plays, skips and source skips per day and value of each reporting dimension (genre, hour,
    weekday, tier, context, position band): the state fct_skip_rates sums, so that a daily run
    counts only the rebuilt days. Incremental by played_date. The genre and tier are those
    dim_tracks and dim_users hold when the day is built; a users or tracks load touches every
    day (docs/incremental.md), so every day is rebuilt with the new ones and a tier change
    moves all of the user's plays, as a full build would. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('played_date', key=['played_date', 'dimension', 'dimension_value'])
) }}

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
    from {{ ref('int_plays_sessionized') }}
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

-- labels are made per group, not per play: the plays are grouped on integers where they can be
plays_described as (
    select
        plays.played_date,
        coalesce(tracks.genre, 'unknown') as genre,
        plays.hour_of_day,
        plays.iso_day_of_week,
        users.tier,
        coalesce(plays.context_type, 'unknown') as context_type,
        case
            when plays.session_play_number = 1 then 1
            when plays.session_play_number <= 5 then 2
            when plays.session_play_number <= 10 then 3
            when plays.session_play_number <= 20 then 4
            else 5
        end as position_band_number,
        case when plays.is_skipped then 1 else 0 end as skip_flag,
        case when plays.source_skipped then 1 else 0 end as source_skip_flag,
        case when plays.source_skipped is not null then 1 else 0 end as source_labelled_flag
    from plays
    left join tracks
        on plays.track_id = tracks.track_id
    left join users
        on plays.user_id = users.user_id
),

-- one grouping set per dimension: one pass over the plays, six small hash tables
aggregated as (
    select
        played_date,
        case
            when grouping(genre) = 0 then 'genre'
            when grouping(hour_of_day) = 0 then 'hour_of_day'
            when grouping(iso_day_of_week) = 0 then 'weekday'
            when grouping(tier) = 0 then 'tier'
            when grouping(context_type) = 0 then 'context_type'
            when grouping(position_band_number) = 0 then 'position_band'
        end as dimension,
        case
            when grouping(genre) = 0 then genre
            when grouping(hour_of_day) = 0
                then lpad(cast(hour_of_day as {{ dbt.type_string() }}), 2, '0')
            when grouping(iso_day_of_week) = 0
                then case iso_day_of_week
                    when 1 then '1-mon'
                    when 2 then '2-tue'
                    when 3 then '3-wed'
                    when 4 then '4-thu'
                    when 5 then '5-fri'
                    when 6 then '6-sat'
                    when 7 then '7-sun'
                end
            when grouping(tier) = 0 then tier
            when grouping(context_type) = 0 then context_type
            -- zero-padded bands sort in order as text
            when grouping(position_band_number) = 0
                then case position_band_number
                    when 1 then '01'
                    when 2 then '02-05'
                    when 3 then '06-10'
                    when 4 then '11-20'
                    else '21+'
                end
        end as dimension_value,
        cast(count(*) as {{ dbt.type_bigint() }}) as play_count,
        cast(sum(skip_flag) as {{ dbt.type_bigint() }}) as skip_count,
        cast(sum(source_skip_flag) as {{ dbt.type_bigint() }}) as source_skip_count,
        cast(sum(source_labelled_flag) as {{ dbt.type_bigint() }}) as source_labelled_play_count
    from plays_described
    group by grouping sets (
        (played_date, genre),
        (played_date, hour_of_day),
        (played_date, iso_day_of_week),
        (played_date, tier),
        (played_date, context_type),
        (played_date, position_band_number)
    )
)

select * from aggregated
