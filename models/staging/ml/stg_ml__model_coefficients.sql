{#- One row per term of a trained model's linear predictor. Fails with a clear error before
    the first training run (see stg_ml__model_runs). Doubles are cast
    to `double` on Spark: dbt.type_float() is a 4-byte float there, and the scores must match
    scikit-learn to 1e-9. -#}
{%- set double_type = 'double' if target.type == 'spark' else 'double precision' -%}

with source as (
    select
        run_id,
        model as model_name,
        term_index,
        term,
        term_kind,
        feature,
        category,
        coefficient,
        importance,
        is_selected,
        fill_value,
        center,
        scale
    from {{ ml_source('model_coefficients') }}
),

renamed as (
    select
        {{ surrogate_key(['run_id', 'term_index']) }} as model_term_id,
        cast(run_id as {{ dbt.type_string() }}) as model_run_id,
        cast(model_name as {{ dbt.type_string() }}) as model_name,
        cast(term_index as {{ dbt.type_bigint() }}) as term_index,
        cast(term as {{ dbt.type_string() }}) as term_name,
        cast(term_kind as {{ dbt.type_string() }}) as term_kind,
        cast(feature as {{ dbt.type_string() }}) as feature_name,
        cast(category as {{ dbt.type_string() }}) as category,
        cast(coefficient as {{ double_type }}) as coefficient,
        cast(importance as {{ double_type }}) as importance,
        cast(is_selected as boolean) as is_selected,
        cast(fill_value as {{ double_type }}) as fill_value,
        cast(center as {{ double_type }}) as center_value,
        cast(scale as {{ double_type }}) as scale_value
    from source
)

select * from renamed
