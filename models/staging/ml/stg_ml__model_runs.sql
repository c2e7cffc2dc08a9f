{#- One row per training run. Fails with a clear error before the first training run (the
    ml tables do not exist yet; macros/ml_source.sql): the daily run leaves the ML wing out. -#}
with source as (
    select
        run_id,
        model,
        trained_at,
        config,
        code_version,
        estimator,
        target,
        source_table,
        train_start_date,
        train_end_date,
        test_start_date,
        test_end_date,
        train_population_rows,
        train_rows,
        test_rows,
        is_sampled,
        sample_method,
        feature_count,
        selected_feature_count,
        fit_seconds,
        peak_rss_mb
    from {{ ml_source('model_runs') }}
),

renamed as (
    select
        cast(run_id as {{ dbt.type_string() }}) as model_run_id,
        cast(model as {{ dbt.type_string() }}) as model_name,
        cast(trained_at as {{ dbt.type_timestamp() }}) as trained_at,
        -- jsonb on PostgreSQL, a JSON string on Spark: kept as written
        config as run_config,
        cast(code_version as {{ dbt.type_string() }}) as code_version,
        cast(estimator as {{ dbt.type_string() }}) as estimator,
        cast(target as {{ dbt.type_string() }}) as target_description,
        cast(source_table as {{ dbt.type_string() }}) as source_table,
        cast(train_start_date as date) as train_start_date,
        cast(train_end_date as date) as train_end_date,
        cast(test_start_date as date) as test_start_date,
        cast(test_end_date as date) as test_end_date,
        cast(train_population_rows as {{ dbt.type_bigint() }}) as train_population_row_count,
        cast(train_rows as {{ dbt.type_bigint() }}) as train_row_count,
        cast(test_rows as {{ dbt.type_bigint() }}) as test_row_count,
        cast(is_sampled as boolean) as is_sampled,
        cast(sample_method as {{ dbt.type_string() }}) as sample_method,
        cast(feature_count as {{ dbt.type_bigint() }}) as feature_count,
        cast(selected_feature_count as {{ dbt.type_bigint() }}) as selected_feature_count,
        cast(fit_seconds as {{ dbt.type_float() }}) as fit_seconds,
        cast(peak_rss_mb as {{ dbt.type_float() }}) as peak_rss_mb
    from source
)

select * from renamed
