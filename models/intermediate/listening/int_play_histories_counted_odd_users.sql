{#- The history of the plays of the users with an odd user_id: one half of the view
    int_play_histories_counted, on PostgreSQL only (macros/play_histories_counted.sql holds
    the select, the rules and the costs). -#}
{{ config(
    enabled=target.type == 'postgres',
    materialized='incremental',
    **play_histories_incremental()
) }}
{#- hash joins for the history: with nested loops PostgreSQL looked each active user's days up
    in the day-led key of int_user_days_engagement, one index search per user and day (1.6M
    at 1M sessions; the daily select 17.1-17.8 s against 15.2-15.9 s without them). dbt
    appends the hooks of each config call. -#}
{{ config(pre_hook="{{ planner_without_nested_loops() }}") }}

{#- after the view as well as the part: an incremental run finds the sessions a change reaches
    in the view (incremental_session_reach), and a read of it while the view is replaced
    held up the replacement, and every model after it, until this part ended (10 s of a 1M
    daily run) -#}
-- depends_on: {{ ref('int_plays_sessionized') }}
{{ play_histories_counted(users='odd') }}
