{#- The valid plays of the users with an odd user_id, sessionized and enriched: one half of
    the view int_plays_sessionized (macros/plays_sessionized.sql holds the select, the
    rules and the costs). -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('session_date', days_before=session_history_days(), key='play_id',
                         indexed=['played_date'], own_sessions=true)
) }}

{{ plays_sessionized(users='odd') }}
