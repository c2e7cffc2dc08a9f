{%- set skip_end_reasons = "'" ~ (var('skip_end_reasons') | join("', '")) ~ "'" -%}

with source as (
    select * from {{ source('streaming', 'listening_events') }}
),

renamed as (
    select
        cast(event_id as {{ dbt.type_string() }}) as play_id,
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(track_id as {{ dbt.type_string() }}) as track_id,
        cast(session_hint as {{ dbt.type_string() }}) as session_hint,
        cast(started_at as {{ dbt.type_timestamp() }}) as played_at,
        cast(started_at as date) as played_date,
        cast(ms_played as {{ dbt.type_bigint() }}) as ms_played,
        lower(context_type) as context_type,
        cast(context_id as {{ dbt.type_string() }}) as context_id,
        cast(position_in_context as {{ dbt.type_int() }}) as position_in_context,
        lower(reason_start) as reason_start,
        lower(reason_end) as reason_end,
        coalesce(is_shuffle, false) as is_shuffle,
        lower(device) as device,
        cast(source_skipped as {{ dbt.type_boolean() }}) as source_skipped,
        lower(source_skip_label) as source_skip_label,
        _batch_id as load_batch_id,
        _loaded_at as loaded_at
    from source
),

-- A re-delivered event is the same play: keep the latest load of each event_id. The
-- partition includes played_date (a duplicate is the same event, so the same day), which
-- lets the database push day filters of incremental runs below this window.
duplicates_numbered as (
    select
        *,
        row_number() over (
            partition by play_id, played_date
            order by loaded_at desc, load_batch_id desc, played_at asc, ms_played asc
        ) as delivery_number
    from renamed
),

deduplicated as (
    select * from duplicates_numbered
    where delivery_number = 1
),

flagged as (
    select
        play_id,
        user_id,
        track_id,
        session_hint,
        played_at,
        played_date,
        {{ add_milliseconds('played_at', 'ms_played') }} as ended_at,
        ms_played,
        context_type,
        context_id,
        position_in_context,
        reason_start,
        reason_end,
        is_shuffle,
        device,
        ms_played < 0 as has_negative_ms_played,
        ms_played > {{ var('max_ms_played_hours') }} * 3600000 as has_overlong_ms_played,
        played_at > {{ as_of_timestamp() }} as is_future,
        coalesce(
            reason_end in ({{ skip_end_reasons }})
            and ms_played < {{ var('skip_threshold_ms') }},
            false
        ) as is_skipped,
        source_skipped,
        source_skip_label,
        loaded_at
    from deduplicated
)

select * from flagged
