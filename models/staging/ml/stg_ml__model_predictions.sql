{#- One row per held-out row a training run scored: a play (skip model) or a session
    (duration model). Fails with a clear error before the first training run (see
    stg_ml__model_runs). -#}
with source as (
    select
        run_id,
        model,
        play_id,
        session_id,
        event_date,
        label,
        prediction,
        baseline_prediction
    from {{ ml_source('model_predictions') }}
),

renamed as (
    select
        {{ surrogate_key(['run_id', 'play_id', 'session_id']) }} as model_prediction_id,
        cast(run_id as {{ dbt.type_string() }}) as model_run_id,
        cast(model as {{ dbt.type_string() }}) as model_name,
        cast(play_id as {{ dbt.type_string() }}) as play_id,
        cast(session_id as {{ dbt.type_string() }}) as session_id,
        cast(event_date as date) as event_date,
        -- the name python_jobs.report and the tests read
        cast(label as {{ dbt.type_float() }}) as label,  -- noqa: RF04
        cast(prediction as {{ dbt.type_float() }}) as prediction,
        cast(baseline_prediction as {{ dbt.type_float() }}) as baseline_prediction
    from source
)

select * from renamed
