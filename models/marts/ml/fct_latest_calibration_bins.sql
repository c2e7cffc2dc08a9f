{#- The rows of ml.calibration from the latest run of each model (fct_latest_model_runs). -#}
{{ config(materialized='view', schema='ml', alias='latest_calibration') }}

with calibration_bins as (
    select * from {{ ref('stg_ml__calibration_bins') }}
),

latest_runs as (
    select model_run_id from {{ ref('fct_latest_model_runs') }}
),

latest as (
    select calibration_bins.*
    from calibration_bins
    inner join latest_runs
        on calibration_bins.model_run_id = latest_runs.model_run_id
)

select * from latest
