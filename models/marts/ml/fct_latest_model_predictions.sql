{#- The rows of ml.model_predictions from the latest run of each model (fct_latest_model_runs). -#}
{{ config(materialized='view', schema='ml', alias='latest_model_predictions') }}

with model_predictions as (
    select * from {{ ref('stg_ml__model_predictions') }}
),

latest_runs as (
    select model_run_id from {{ ref('fct_latest_model_runs') }}
),

latest as (
    select model_predictions.*
    from model_predictions
    inner join latest_runs
        on model_predictions.model_run_id = latest_runs.model_run_id
)

select * from latest
