with source as (
    select * from {{ source('experiments', 'experiments') }}
),

renamed as (
    select
        cast(experiment_id as {{ dbt.type_string() }}) as experiment_id,
        experiment_name,
        hypothesis,
        salt as assignment_salt,
        cast(traffic_share as {{ dbt.type_float() }}) as traffic_share,
        cast(started_at as {{ dbt.type_timestamp() }}) as started_at,
        cast(ended_at as {{ dbt.type_timestamp() }}) as ended_at
    from source
)

select * from renamed
