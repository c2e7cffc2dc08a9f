with source as (
    select * from {{ source('streaming', 'users') }}
),

renamed as (
    select
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(signup_at as {{ dbt.type_timestamp() }}) as signed_up_at,
        cast(signup_at as date) as signed_up_date,
        lower(tier) as tier,
        upper(country) as country_code,
        cast(birth_year as {{ dbt.type_int() }}) as birth_year,
        cast(timezone as {{ dbt.type_string() }}) as timezone
    from source
)

select * from renamed
