with tracks as (
    select * from {{ ref('stg_spotify__tracks') }}
),

audio_features as (
    select * from {{ ref('stg_spotify__audio_features') }}
),

artists as (
    select
        artist_id,
        artist_name,
        primary_genre
    from {{ ref('dim_artists') }}
),

joined as (
    select
        tracks.track_id,
        tracks.track_name,
        tracks.artist_id,
        artists.artist_name,
        coalesce(artists.primary_genre, 'unknown') as genre,
        tracks.album_id,
        tracks.album_name,
        tracks.release_year,
        tracks.release_date,
        tracks.release_date_precision,
        tracks.duration_ms,
        tracks.popularity,
        tracks.is_explicit,
        tracks.is_stub,
        audio_features.track_id is not null as has_audio_features,
        audio_features.danceability,
        audio_features.energy,
        audio_features.pitch_class,
        audio_features.loudness_db,
        audio_features.is_major_mode,
        audio_features.speechiness,
        audio_features.acousticness,
        audio_features.instrumentalness,
        audio_features.liveness,
        audio_features.valence,
        audio_features.tempo_bpm,
        audio_features.time_signature
    from tracks
    left join artists
        on tracks.artist_id = artists.artist_id
    left join audio_features
        on tracks.track_id = audio_features.track_id
)

select * from joined
