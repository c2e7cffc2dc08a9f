with source as (
    select * from {{ source('spotify', 'tracks') }}
),

renamed as (
    select
        cast(track_id as {{ dbt.type_string() }}) as track_id,
        track_name,
        cast(artist_id as {{ dbt.type_string() }}) as artist_id,
        cast(album_id as {{ dbt.type_string() }}) as album_id,
        album_name,
        cast(release_year as {{ dbt.type_int() }}) as release_year,
        cast(duration_ms as {{ dbt.type_bigint() }}) as duration_ms,
        cast(popularity as {{ dbt.type_int() }}) as popularity,
        coalesce(is_explicit, false) as is_explicit,
        cast(release_date as date) as release_date,
        lower(release_date_precision) as release_date_precision,
        -- only a listening-log ingest writes stubs; every other source leaves the column empty
        coalesce(is_stub, false) as is_stub
    from source
)

select * from renamed
