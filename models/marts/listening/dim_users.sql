with users as (
    select * from {{ ref('stg_streaming__users') }}
),

countries as (
    select * from {{ ref('countries') }}
),

user_days as (
    select
        user_id,
        activity_date,
        play_count
    from {{ ref('int_user_days_active') }}
),

activity_summarised as (
    select
        user_id,
        min(activity_date) as first_active_date,
        max(activity_date) as last_active_date,
        count(*) as active_day_count,
        cast(sum(play_count) as {{ dbt.type_bigint() }}) as play_count
    from user_days
    group by user_id
),

joined as (
    select
        users.user_id,
        users.signed_up_at,
        users.signed_up_date,
        users.tier,
        users.country_code,
        coalesce(countries.country_name, users.country_code, 'Unknown') as country_name,
        coalesce(countries.region, 'OTHER') as region,
        users.birth_year,
        users.timezone,
        activity_summarised.first_active_date,
        activity_summarised.last_active_date,
        coalesce(activity_summarised.active_day_count, 0) as active_day_count,
        coalesce(activity_summarised.play_count, 0) as play_count
    from users
    left join countries
        on users.country_code = countries.country_code
    left join activity_summarised
        on users.user_id = activity_summarised.user_id
)

select * from joined
