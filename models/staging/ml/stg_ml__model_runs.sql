{#- One row per training run. Reads as empty, with the same columns, while the Python job
    has not created ml.model_runs yet (fresh database, or a Spark target): `dbt build` then
    succeeds and fct_play_skip_scores is empty until a skip model is trained. -#}
{%- set runs_relation = source('ml', 'model_runs') -%}
{%- set runs_exist = execute and adapter.get_relation is defined and adapter.get_relation(
    database=runs_relation.database,
    schema=runs_relation.schema,
    identifier=runs_relation.identifier,
) is not none -%}

with source as (
    {%- if runs_exist %}
        select
            run_id,
            model as model_name,
            trained_at,
            code_version,
            train_start_date,
            train_end_date,
            test_start_date,
            test_end_date,
            train_rows,
            test_rows,
            is_sampled
        from {{ runs_relation }}
    {%- else %}
        select
            cast(null as {{ dbt.type_string() }}) as run_id,
            cast(null as {{ dbt.type_string() }}) as model_name,
            cast(null as {{ dbt.type_timestamp() }}) as trained_at,
            cast(null as {{ dbt.type_string() }}) as code_version,
            cast(null as date) as train_start_date,
            cast(null as date) as train_end_date,
            cast(null as date) as test_start_date,
            cast(null as date) as test_end_date,
            cast(null as {{ dbt.type_bigint() }}) as train_rows,
            cast(null as {{ dbt.type_bigint() }}) as test_rows,
            cast(null as boolean) as is_sampled
        where 1 = 0
    {%- endif %}
),

renamed as (
    select
        cast(run_id as {{ dbt.type_string() }}) as model_run_id,
        cast(model_name as {{ dbt.type_string() }}) as model_name,
        cast(trained_at as {{ dbt.type_timestamp() }}) as trained_at,
        cast(code_version as {{ dbt.type_string() }}) as code_version,
        cast(train_start_date as date) as train_start_date,
        cast(train_end_date as date) as train_end_date,
        cast(test_start_date as date) as test_start_date,
        cast(test_end_date as date) as test_end_date,
        cast(train_rows as {{ dbt.type_bigint() }}) as train_row_count,
        cast(test_rows as {{ dbt.type_bigint() }}) as test_row_count,
        cast(is_sampled as boolean) as is_sampled
    from source
)

select * from renamed
