{#- From the context runs (a tenth as many rows as plays, and every session's plays are
    in its runs): sums, counts and maxima of the runs add up to those of the plays exactly,
    the session's first play starts its first run, and a context type counts once however
    many runs have it. -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days())
) }}

with runs as (
    select
        session_id,
        user_id,
        session_started_at,
        session_date,
        context_run_number,
        context_type,
        run_ended_at,
        play_count,
        skip_count,
        ms_played,
        device
    from {{ ref('int_context_runs') }}
    {% if is_incremental() %}
        where {{ incremental_rebuilt_where('session_date') }}
    {% endif %}
),

aggregated as (
    select
        session_id,
        user_id,
        session_started_at,
        session_date,
        max(run_ended_at) as session_ended_at,
        cast(sum(play_count) as {{ dbt.type_bigint() }}) as track_count,
        cast(sum(skip_count) as {{ dbt.type_bigint() }}) as skip_count,
        cast(sum(ms_played) as {{ dbt.type_bigint() }}) as ms_played,
        count(distinct context_type) as distinct_context_type_count,
        max(case when context_run_number = 1 then context_type end) as first_context_type,
        max(case when context_run_number = 1 then device end) as device
    from runs
    group by
        session_id,
        user_id,
        session_started_at,
        session_date
),

final as (
    select
        session_id,
        user_id,
        session_started_at,
        session_ended_at,
        session_date,
        cast(
            {{ epoch_milliseconds('session_ended_at') }} - {{ epoch_milliseconds('session_started_at') }}
            as {{ dbt.type_float() }}
        ) / 1000 as duration_seconds,
        track_count,
        skip_count,
        cast(skip_count as {{ dbt.type_float() }}) / track_count as skip_rate,
        ms_played,
        distinct_context_type_count,
        first_context_type,
        device
    from aggregated
)

select * from final
