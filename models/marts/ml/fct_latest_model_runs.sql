{#- The latest training run of each model (by trained_at, then run id): what the SQL
    scoring, the report and the other ml.latest_* views read. Built in schema ml beside the
    run tables, under the names the training job's views had (ml.latest_model_runs ...). -#}
{{ config(materialized='view', schema='ml', alias='latest_model_runs') }}

with model_runs as (
    select * from {{ ref('stg_ml__model_runs') }}
),

runs_ranked as (
    select
        model_runs.*,
        row_number() over (
            partition by model_runs.model_name
            order by model_runs.trained_at desc, model_runs.model_run_id desc
        ) as run_rank
    from model_runs
),

latest as (
    select * from runs_ranked
    where run_rank = 1
)

select * from latest
