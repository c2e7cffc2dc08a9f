{#- P(skip) of every play of fct_skip_training_plays under the latest trained skip model,
    computed in the warehouse from its stored terms (python_jobs/train/features.py):

        z = intercept
            + sum over numeric terms  coefficient * (coalesce(x, fill_value) - center) / scale
            + sum over one-hot terms  coefficient when the play's category matches (null is
                                      '__missing__'; a category unseen in training adds 0)
        skip_probability = 1 / (1 + exp(-z))

    The lists below are every feature this model can score; python_jobs/train/defaults.yml
    picks among them (tests/python/test_train.py checks that it stays a subset). A feature
    the latest run did not use has no term and adds 0. Booleans count as 0/1. Empty until a
    skip model has been trained. Doubles are `double` on Spark (dbt.type_float() is 4 bytes
    there), so both engines give scikit-learn's probabilities to 1e-9. -#}
{%- set double_type = 'double' if target.type == 'spark' else 'double precision' -%}
{%- set numeric_features = [
    'energy', 'valence', 'danceability', 'acousticness', 'instrumentalness', 'speechiness',
    'liveness', 'loudness_db', 'tempo_bpm', 'track_duration_ms', 'track_popularity',
    'position_in_context', 'session_play_number', 'context_run_number', 'run_play_number',
    'hour_of_day', 'session_start_hour', 'iso_day_of_week', 'days_since_signup',
    'user_prior_play_count', 'user_prior_skip_count', 'user_prior_skip_rate',
    'user_prior_session_count', 'user_prior_track_play_count', 'user_prior_track_skip_rate',
    'user_prior_artist_play_count', 'user_prior_artist_skip_rate',
    'user_prior_genre_play_count', 'user_prior_genre_play_share', 'user_prior_genre_skip_rate',
    'user_prior_mean_energy', 'energy_distance_from_prior_mean', 'session_prior_skip_count',
    'session_prior_skip_rate',
] -%}
{%- set boolean_features = [
    'has_audio_features', 'is_shuffle', 'is_weekend', 'is_new_artist', 'is_previous_play_skipped',
] -%}
{#- Derived features: the same SQL text as python_jobs/train/features.py DERIVED (a test
    checks), computed from the mart's columns, then scored like any numeric feature. -#}
{%- set derived_features = {
    'session_play_number_capped':
        'least(session_play_number, 21)',
    'user_prior_skip_logit_shrunk':
        'ln((user_prior_skip_count + 3e0) / (user_prior_play_count - user_prior_skip_count + 7e0))',
    'user_prior_genre_skip_logit_shrunk':
        'ln((coalesce(user_prior_genre_skip_rate, 0) * user_prior_genre_play_count + 15e-1) / ((1 - coalesce(user_prior_genre_skip_rate, 0)) * user_prior_genre_play_count + 35e-1))',
    'energy_distance_from_shrunk_mean':
        'abs(energy - (coalesce(user_prior_mean_energy, 6e-1) * user_prior_play_count + 6e0) / (user_prior_play_count + 1e1))',
    'user_prior_genre_share_shrunk':
        '(user_prior_genre_play_count + 5e-1) / (user_prior_play_count + 1e1)'
} -%}
{%- set categorical_features = [
    'genre', 'context_type', 'playlist_type', 'reason_start', 'device', 'tier',
    'hour_of_day', 'session_start_hour', 'iso_day_of_week',
] -%}

with plays as (
    select
        play_id,
        session_id,
        user_id,
        played_date,
        is_skipped,
        {%- for feature in numeric_features + boolean_features %}
            {{ feature }},
        {%- endfor %}
        {%- for feature, expression in derived_features.items() %}
            {{ expression }} as {{ feature }},
        {%- endfor %}
    {%- for feature in categorical_features if feature not in numeric_features %}
        {{ feature }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ ref('fct_skip_training_plays') }}
),

latest_run as (
    select model_run_id
    from {{ ref('fct_latest_model_runs') }}
    where model_name = 'skip'
),

model_terms as (
    select
        model_run_id,
        term_kind,
        feature_name,
        category,
        coefficient,
        fill_value,
        center_value,
        scale_value
    from {{ ref('stg_ml__model_coefficients') }}
    where model_name = 'skip'
),

latest_terms as (
    select model_terms.*
    from model_terms
    inner join latest_run
        on model_terms.model_run_id = latest_run.model_run_id
),

-- one row: the intercept and, per numeric feature, its coefficient, fill value, center, scale
numeric_terms_pivoted as (
    select
        max(model_run_id) as model_run_id,
        max(case when term_kind = 'intercept' then coefficient end) as intercept,
    {%- for feature in numeric_features + derived_features.keys() | list + boolean_features %}
        max(case when term_kind = 'numeric' and feature_name = '{{ feature }}' then coefficient end)
            as {{ feature }}__coefficient,
        max(case when term_kind = 'numeric' and feature_name = '{{ feature }}' then fill_value end)
            as {{ feature }}__fill_value,
        max(case when term_kind = 'numeric' and feature_name = '{{ feature }}' then center_value end)
            as {{ feature }}__center_value,
        max(case when term_kind = 'numeric' and feature_name = '{{ feature }}' then scale_value end)
            as {{ feature }}__scale_value{{ "," if not loop.last }}
    {%- endfor %}
    from latest_terms
),

categorical_terms as (
    select
        feature_name,
        category,
        coefficient
    from latest_terms
    where term_kind = 'categorical'
),

-- the inputs exactly as python_jobs/train/data.py reads them
plays_prepared as (
    select
        play_id,
        session_id,
        user_id,
        played_date,
        is_skipped,
        {%- for feature in numeric_features + derived_features.keys() | list %}
            cast({{ feature }} as {{ double_type }}) as {{ feature }}__value,
        {%- endfor %}
        {%- for feature in boolean_features %}
            cast(cast({{ feature }} as int) as {{ double_type }}) as {{ feature }}__value,
        {%- endfor %}
    {%- for feature in categorical_features %}
        coalesce(cast({{ feature }} as {{ dbt.type_string() }}), '__missing__')
            as {{ feature }}__category{{ "," if not loop.last }}
    {%- endfor %}
    from plays
),

linear_predictor_added as (
    select
        plays_prepared.play_id,
        plays_prepared.session_id,
        plays_prepared.user_id,
        plays_prepared.played_date,
        plays_prepared.is_skipped,
        numeric_terms_pivoted.model_run_id,
        numeric_terms_pivoted.intercept
        {%- for feature in numeric_features + derived_features.keys() | list + boolean_features %}
            + coalesce(
                numeric_terms_pivoted.{{ feature }}__coefficient
                * (
                    coalesce(
                        plays_prepared.{{ feature }}__value, numeric_terms_pivoted.{{ feature }}__fill_value
                    )
                    - numeric_terms_pivoted.{{ feature }}__center_value
                )
                / numeric_terms_pivoted.{{ feature }}__scale_value,
                0
            )
        {%- endfor %}
        {%- for feature in categorical_features %}
            + coalesce({{ feature }}__terms.coefficient, 0)
        {%- endfor %}
            as linear_predictor
    from plays_prepared
    cross join numeric_terms_pivoted
    {%- for feature in categorical_features %}
        left join categorical_terms as {{ feature }}__terms
            on
                {{ feature }}__terms.feature_name = '{{ feature }}'
                and plays_prepared.{{ feature }}__category = {{ feature }}__terms.category
    {%- endfor %}
    where numeric_terms_pivoted.model_run_id is not null
),

final as (
    select
        play_id,
        session_id,
        user_id,
        played_date,
        is_skipped,
        model_run_id,
        linear_predictor,
        -- exp() raises on overflow in PostgreSQL: |z| <= 700 changes no probability
        1 / (1 + exp(-least(greatest(linear_predictor, -700), 700))) as skip_probability
    from linear_predictor_added
)

select * from final
