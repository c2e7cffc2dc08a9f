{#- One row per metric of a training run (train, validation or held-out test split). Fails
    with a clear error before the first training run (see stg_ml__model_runs). -#}
with source as (
    select
        run_id,
        model,
        split,
        metric,
        value
    from {{ ml_source('model_metrics') }}
),

renamed as (
    select
        {{ surrogate_key(['run_id', 'split', 'metric']) }} as model_metric_id,
        cast(run_id as {{ dbt.type_string() }}) as model_run_id,
        cast(model as {{ dbt.type_string() }}) as model_name,
        cast(split as {{ dbt.type_string() }}) as split,
        cast(metric as {{ dbt.type_string() }}) as metric,
        cast(value as {{ dbt.type_float() }}) as metric_value
    from source
)

select * from renamed
