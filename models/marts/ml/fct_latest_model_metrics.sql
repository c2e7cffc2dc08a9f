{#- The rows of ml.model_metrics from the latest run of each model (fct_latest_model_runs). -#}
{{ config(materialized='view', schema='ml', alias='latest_model_metrics') }}

with model_metrics as (
    select * from {{ ref('stg_ml__model_metrics') }}
),

latest_runs as (
    select model_run_id from {{ ref('fct_latest_model_runs') }}
),

latest as (
    select model_metrics.*
    from model_metrics
    inner join latest_runs
        on model_metrics.model_run_id = latest_runs.model_run_id
)

select * from latest
