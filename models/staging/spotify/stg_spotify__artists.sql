with source as (
    select * from {{ source('spotify', 'artists') }}
),

renamed as (
    select
        cast(artist_id as {{ dbt.type_string() }}) as artist_id,
        artist_name,
        cast(popularity as {{ dbt.type_int() }}) as popularity,
        cast(followers as {{ dbt.type_bigint() }}) as follower_count
    from source
)

select * from renamed
