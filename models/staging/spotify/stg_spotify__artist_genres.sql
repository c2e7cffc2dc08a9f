with source as (
    select * from {{ source('spotify', 'artist_genres') }}
),

renamed as (
    select
        cast(artist_id as {{ dbt.type_string() }}) as artist_id,
        lower(trim(genre)) as genre,
        cast(genre_rank as {{ dbt.type_int() }}) as genre_rank,
        genre_rank = 1 as is_primary_genre
    from source
)

select * from renamed
