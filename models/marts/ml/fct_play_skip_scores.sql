{#- P(skip) of every play of fct_play_skip_features under the latest trained skip model,
    computed in the warehouse from its stored terms (python_jobs/train/features.py):

        z = intercept
            + sum over numeric terms  coefficient * (coalesce(x, fill_value) - center) / scale
            + sum over one-hot terms  coefficient when the play's category matches (null is
                                      '__missing__'; a category unseen in training adds 0)
        skip_probability = 1 / (1 + exp(-z))

    The features are var skip_model_features (dbt_project.yml), the one list the training
    job reads too: every feature this model can score; python_jobs/train/defaults.yml picks
    among them (python_jobs/train/settings.py checks that it stays a subset). A feature the
    latest run did not use has no term and adds 0. Booleans count as 0/1; derived features
    are SQL over the feature table's columns, the same text training reads. Empty until a
    skip model has been trained. Doubles are `double` on Spark (dbt.type_float() is 4 bytes
    there), so both engines give scikit-learn's probabilities to 1e-9. -#}
{%- set double_type = 'double' if target.type == 'spark' else 'double precision' -%}
{%- set skip_features = var('skip_model_features') -%}
{%- set numeric_features = skip_features['numeric'] -%}
{%- set boolean_features = skip_features['boolean'] -%}
{%- set derived_features = skip_features['derived'] -%}
{%- set categorical_features = skip_features['categorical'] %}

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
    from {{ ref('fct_play_skip_features') }}
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
