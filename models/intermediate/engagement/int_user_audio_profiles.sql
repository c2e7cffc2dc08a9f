{#- One row per user with a play with audio features on or before the as-of day: the
    play-weighted mean and population variance of the user's audio features, and how far
    the user's taste lies from the catalogue (unweighted mean over all tracks with audio
    features). Variance = mean of squares - square of mean, floored at 0 against rounding. -#}
{{ config(materialized='table', pre_hook="{{ planner_without_nested_loops() }}") }}

{%- set unit_features = ['energy', 'valence', 'danceability', 'acousticness'] -%}

with as_of as (
    select {{ feature_as_of_date(ref('int_user_days_engagement'), 'session_date') }} as as_of_date
),

user_days as (
    select * from {{ ref('int_user_days_engagement') }}
),

audio_features as (
    select * from {{ ref('stg_spotify__audio_features') }}
),

catalogue as (
    select
        {% for feature in unit_features %}
            avg({{ feature }}) as catalogue_{{ feature }},
        {% endfor %}
        avg(tempo_bpm) as catalogue_tempo_bpm
    from audio_features
),

sums as (
    select
        user_days.user_id,
        {% for feature in unit_features + ['tempo_bpm'] %}
            sum(user_days.{{ feature }}_sum) as {{ feature }}_sum,
            sum(user_days.{{ feature }}_square_sum) as {{ feature }}_square_sum,
        {% endfor %}
        sum(user_days.audio_play_count) as audio_play_count
    from user_days
    cross join as_of
    where user_days.session_date <= as_of.as_of_date
    group by user_days.user_id
    having sum(user_days.audio_play_count) > 0
),

means as (
    select
        user_id,
        {% for feature in unit_features + ['tempo_bpm'] %}
            {{ feature }}_sum / audio_play_count as mean_{{ feature }},
            {{ feature }}_square_sum / audio_play_count as mean_square_{{ feature }},
        {% endfor %}
        audio_play_count
    from sums
),

features as (
    select
        means.user_id,
        means.audio_play_count,
        {% for feature in unit_features %}
            means.mean_{{ feature }},
            greatest(
                means.mean_square_{{ feature }} - means.mean_{{ feature }} * means.mean_{{ feature }}, 0
            ) as {{ feature }}_variance,
        {% endfor %}
        means.mean_tempo_bpm,
        sqrt(greatest(
            means.mean_square_tempo_bpm - means.mean_tempo_bpm * means.mean_tempo_bpm, 0
        )) as tempo_bpm_stddev,
        means.mean_tempo_bpm - catalogue.catalogue_tempo_bpm as tempo_preference_bpm,
        sqrt(
            {% for feature in unit_features %}
                (means.mean_{{ feature }} - catalogue.catalogue_{{ feature }})
                * (means.mean_{{ feature }} - catalogue.catalogue_{{ feature }})
                {{ '+' if not loop.last }}
            {% endfor %}
        ) as taste_distance_from_catalogue
    from means
    cross join catalogue
)

select * from features
