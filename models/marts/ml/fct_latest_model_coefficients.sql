{#- The rows of ml.model_coefficients from the latest run of each model (fct_latest_model_runs). -#}
{{ config(materialized='view', schema='ml', alias='latest_model_coefficients') }}

with model_coefficients as (
    select * from {{ ref('stg_ml__model_coefficients') }}
),

latest_runs as (
    select model_run_id from {{ ref('fct_latest_model_runs') }}
),

latest as (
    select model_coefficients.*
    from model_coefficients
    inner join latest_runs
        on model_coefficients.model_run_id = latest_runs.model_run_id
)

select * from latest
