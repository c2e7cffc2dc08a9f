with source as (
    select * from {{ source('experiments', 'experiment_assignments') }}
),

renamed as (
    select
        {{ surrogate_key(['experiment_id', 'user_id']) }} as experiment_assignment_id,
        cast(experiment_id as {{ dbt.type_string() }}) as experiment_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        variant,
        cast(assigned_at as {{ dbt.type_timestamp() }}) as assigned_at,
        cast(assigned_at as date) as assigned_date
    from source
)

select * from renamed
