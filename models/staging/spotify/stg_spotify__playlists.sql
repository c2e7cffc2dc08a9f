with source as (
    select * from {{ source('spotify', 'playlists') }}
),

renamed as (
    select
        cast(playlist_id as {{ dbt.type_string() }}) as playlist_id,
        playlist_name,
        lower(playlist_type) as playlist_type,
        cast(owner_user_id as {{ dbt.type_bigint() }}) as owner_user_id,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at
    from source
)

select * from renamed
