{#- One row per decile of predicted P(skip) of a skip-model run (split test, or oracle_test
    for the generator's oracle). Fails with a clear error before the first training run (see
    stg_ml__model_runs). -#}
with source as (
    select
        run_id,
        model,
        split,
        bin,
        row_count,
        mean_predicted,
        observed_rate,
        min_predicted,
        max_predicted
    from {{ ml_source('calibration') }}
),

renamed as (
    select
        {{ surrogate_key(['run_id', 'split', 'bin']) }} as calibration_bin_id,
        cast(run_id as {{ dbt.type_string() }}) as model_run_id,
        cast(model as {{ dbt.type_string() }}) as model_name,
        cast(split as {{ dbt.type_string() }}) as split,
        cast(bin as {{ dbt.type_bigint() }}) as bin_number,
        cast(row_count as {{ dbt.type_bigint() }}) as row_count,
        cast(mean_predicted as {{ dbt.type_float() }}) as mean_predicted,
        cast(observed_rate as {{ dbt.type_float() }}) as observed_rate,
        cast(min_predicted as {{ dbt.type_float() }}) as min_predicted,
        cast(max_predicted as {{ dbt.type_float() }}) as max_predicted
    from source
)

select * from renamed
