with source as (
    select * from {{ source('experiments', 'experiment_variants') }}
),

renamed as (
    select
        {{ surrogate_key(['experiment_id', 'variant']) }} as experiment_variant_id,
        cast(experiment_id as {{ dbt.type_string() }}) as experiment_id,
        variant,
        variant = 'control' as is_control,
        cast(weight as {{ dbt.type_float() }}) as allocation_weight
    from source
)

select * from renamed
