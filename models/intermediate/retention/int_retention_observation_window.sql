{#- The days the retention and churn marts can see, one row: from the first day with a
    session to the as-of day, both whole days. The last day with a session is taken as
    incomplete (data of the current day, or sessions pushed past the data's end), so the
    as-of day is the day before it, or var retention_as_of_date when that is earlier. The
    millisecond bounds let marts compare elapsed times exactly on both engines. -#}
with sessions as (
    select session_date from {{ ref('fct_sessions') }}
),

-- an as-of day after the last complete day would count unobserved days as inactive
last_days as (
    select
        min(session_date) as observation_start_date,
        cast({{ dbt.dateadd('day', -1, 'max(session_date)') }} as date) as last_complete_date
    from sessions
),

bounds as (
    select
        observation_start_date,
        case
            when {{ retention_as_of_date('last_complete_date') }} < last_complete_date
                then {{ retention_as_of_date('last_complete_date') }}
            else last_complete_date
        end as as_of_date
    from last_days
),

end_added as (
    select
        observation_start_date,
        as_of_date,
        cast({{ dbt.dateadd('day', 1, 'as_of_date') }} as date) as observation_end_date
    from bounds
),

final as (
    select
        observation_start_date,
        as_of_date,
        observation_end_date,
        {{ epoch_milliseconds('cast(observation_start_date as ' ~ dbt.type_timestamp() ~ ')') }}
            as observation_start_ms,
        {{ epoch_milliseconds('cast(observation_end_date as ' ~ dbt.type_timestamp() ~ ')') }}
            as observation_end_ms
    from end_added
)

select * from final
