with playlists as (
    select * from {{ ref('stg_spotify__playlists') }}
),

playlist_tracks as (
    select
        playlist_id,
        track_id
    from {{ ref('stg_spotify__playlist_tracks') }}
),

tracks_counted as (
    select
        playlist_id,
        count(*) as track_count,
        count(distinct track_id) as distinct_track_count
    from playlist_tracks
    group by playlist_id
),

joined as (
    select
        playlists.playlist_id,
        playlists.playlist_name,
        playlists.playlist_type,
        playlists.owner_user_id,
        playlists.created_at,
        coalesce(tracks_counted.track_count, 0) as track_count,
        coalesce(tracks_counted.distinct_track_count, 0) as distinct_track_count
    from playlists
    left join tracks_counted
        on playlists.playlist_id = tracks_counted.playlist_id
)

select * from joined
