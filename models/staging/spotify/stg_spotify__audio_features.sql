with source as (
    select * from {{ source('spotify', 'audio_features') }}
),

renamed as (
    select
        cast(track_id as {{ dbt.type_string() }}) as track_id,
        cast(danceability as {{ dbt.type_float() }}) as danceability,
        cast(energy as {{ dbt.type_float() }}) as energy,
        -- -1 means the analysis found no key: a missing value, not a pitch class
        case when key >= 0 then cast(key as {{ dbt.type_int() }}) end as pitch_class,
        cast(loudness as {{ dbt.type_float() }}) as loudness_db,
        cast(mode as {{ dbt.type_int() }}) = 1 as is_major_mode,
        cast(speechiness as {{ dbt.type_float() }}) as speechiness,
        cast(acousticness as {{ dbt.type_float() }}) as acousticness,
        cast(instrumentalness as {{ dbt.type_float() }}) as instrumentalness,
        cast(liveness as {{ dbt.type_float() }}) as liveness,
        cast(valence as {{ dbt.type_float() }}) as valence,
        cast(tempo as {{ dbt.type_float() }}) as tempo_bpm,
        cast(time_signature as {{ dbt.type_int() }}) as time_signature
    from source
)

select * from renamed
