{#- The events whose play_id hashes odd, deduplicated and flagged: one half of the view
    int_plays_flagged (macros/plays_flagged.sql holds the select and the reasons). -#}
{{ config(
    materialized='incremental',
    **incremental_by_day('played_date', lookback_where='not is_future', key='play_id')
) }}

{{ plays_flagged(ids='odd') }}
