{#- Days before a play that can still hold the start of its session: an earlier play lasts at
    most max_ms_played_hours and the next play starts at most session_gap_minutes after it
    ends (sessions are assumed not to chain for longer than that; the generator caps them
    at 50 plays). Session-keyed incremental models start their rebuild this many days
    before the first changed play day. -#}
{% macro session_history_days() %}
    {%- set history_minutes = var('max_ms_played_hours') * 60 + var('session_gap_minutes') -%}
    {{ return((history_minutes / 1440) | round(0, 'ceil') | int) }}
{% endmacro %}
