with artists as (
    select * from {{ ref('stg_spotify__artists') }}
),

artist_genres as (
    select
        artist_id,
        genre,
        is_primary_genre
    from {{ ref('stg_spotify__artist_genres') }}
),

genres_summarised as (
    select
        artist_id,
        max(case when is_primary_genre then genre end) as primary_genre,
        count(*) as genre_count
    from artist_genres
    group by artist_id
),

joined as (
    select
        artists.artist_id,
        artists.artist_name,
        artists.popularity,
        artists.follower_count,
        genres_summarised.primary_genre,
        coalesce(genres_summarised.genre_count, 0) as genre_count
    from artists
    left join genres_summarised
        on artists.artist_id = genres_summarised.artist_id
)

select * from joined
