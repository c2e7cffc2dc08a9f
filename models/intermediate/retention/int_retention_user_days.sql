{#- Elapsed days since signup on which a user started a session. Day n of a user is the
    24-hour span [signed_up_at + n days, signed_up_at + n + 1 days), so week k is days
    7k .. 7k + 6 (the generator's definition); a session counts on the day it starts.
    Sessions after the as-of day or before signup are left out.

    A table, not a view: five data tests read it, and each would recompute it from every
    session (about 2.5 s each at 1M sessions). -#}
{{ config(materialized='table') }}

with sessions as (
    select
        user_id,
        session_started_at,
        session_date
    from {{ ref('fct_sessions') }}
),

users as (
    select
        user_id,
        signed_up_at
    from {{ ref('dim_users') }}
),

observation_window as (
    select as_of_date from {{ ref('int_retention_observation_window') }}
),

elapsed_added as (
    select
        sessions.user_id,
        {{ epoch_milliseconds('sessions.session_started_at') }}
        - {{ epoch_milliseconds('users.signed_up_at') }} as elapsed_ms
    from sessions
    inner join users
        on sessions.user_id = users.user_id
    cross join observation_window
    where
        sessions.session_date <= observation_window.as_of_date
        and sessions.session_started_at >= users.signed_up_at
),

days_numbered as (
    select
        user_id,
        -- a decimal literal keeps the division exact on both engines (Spark's float is
        -- single precision, too coarse for milliseconds since signup)
        cast(floor(elapsed_ms / 86400000.0) as {{ dbt.type_int() }}) as days_since_signup
    from elapsed_added
),

aggregated as (
    select
        user_id,
        days_since_signup,
        count(*) as session_count
    from days_numbered
    group by
        user_id,
        days_since_signup
)

select * from aggregated
