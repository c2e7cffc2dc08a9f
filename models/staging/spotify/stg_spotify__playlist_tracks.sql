with source as (
    select * from {{ source('spotify', 'playlist_tracks') }}
),

renamed as (
    select
        {{ surrogate_key(['playlist_id', 'position']) }} as playlist_track_id,
        cast(playlist_id as {{ dbt.type_string() }}) as playlist_id,
        cast(position as {{ dbt.type_int() }}) as playlist_position,
        cast(track_id as {{ dbt.type_string() }}) as track_id,
        cast(added_at as {{ dbt.type_timestamp() }}) as added_at
    from source
)

select * from renamed
