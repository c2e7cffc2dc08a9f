{#- One row per user and day on which the user started a session (session_date): counts,
    context mix and sums of audio features of the plays of those sessions. Keyed on the
    session's day, like int_plays_sessionized, so whole sessions are rebuilt together and
    running totals before a day are exact. Sums and sums of squares (not means) so any set of
    days adds up to means and variances. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days(),
                         key=['session_date', 'user_id'])
) }}

with plays as (
    select
        user_id,
        session_date,
        ms_played,
        skip_flag,
        is_session_start,
        context_type,
        playlist_type,
        is_shuffle,
        has_audio_features,
        energy,
        valence,
        danceability,
        acousticness,
        tempo_bpm
    from {{ ref('int_plays_sessionized') }}
    {% if is_incremental() %}
        where {{ incremental_rebuilt_where('session_date') }}
    {% endif %}
),

aggregated as (
    select
        user_id,
        session_date,
        count(*) as play_count,
        sum(skip_flag) as skip_count,
        cast(sum(ms_played) as {{ dbt.type_bigint() }}) as ms_played,
        sum(case when is_session_start then 1 else 0 end) as session_count,
        sum(case when context_type = 'playlist' then 1 else 0 end) as playlist_play_count,
        sum(case when context_type = 'album' then 1 else 0 end) as album_play_count,
        sum(case when context_type = 'radio' then 1 else 0 end) as radio_play_count,
        sum(case when context_type = 'artist' then 1 else 0 end) as artist_play_count,
        sum(case when context_type = 'collection' then 1 else 0 end) as collection_play_count,
        sum(case when context_type = 'search' then 1 else 0 end) as search_play_count,
        sum(case when context_type = 'playlist' then skip_flag else 0 end) as playlist_skip_count,
        sum(case when playlist_type = 'editorial' then 1 else 0 end) as editorial_playlist_play_count,
        sum(case when playlist_type = 'algorithmic' then 1 else 0 end)
            as algorithmic_playlist_play_count,
        sum(case when playlist_type = 'user' then 1 else 0 end) as user_playlist_play_count,
        sum(case when is_shuffle then 1 else 0 end) as shuffle_play_count,
        sum(case when has_audio_features then 1 else 0 end) as audio_play_count,
        sum(energy) as energy_sum,
        sum(case when has_audio_features then 1 - skip_flag else 0 end) as kept_audio_play_count,
        sum(energy * (1 - skip_flag)) as kept_energy_sum,
        sum(energy * energy) as energy_square_sum,
        sum(valence) as valence_sum,
        sum(valence * valence) as valence_square_sum,
        sum(danceability) as danceability_sum,
        sum(danceability * danceability) as danceability_square_sum,
        sum(acousticness) as acousticness_sum,
        sum(acousticness * acousticness) as acousticness_square_sum,
        sum(tempo_bpm) as tempo_bpm_sum,
        sum(tempo_bpm * tempo_bpm) as tempo_bpm_square_sum
    from plays
    group by
        user_id,
        session_date
)

select * from aggregated
