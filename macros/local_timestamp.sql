{#- A UTC timestamp on the listener's wall clock: tz is an IANA zone name, null = UTC. A null
    zone returns the timestamp itself, so data without zones (the generator's) costs nothing
    and gives the same hours as before. -#}
{% macro local_timestamp(ts, tz) %}{{ return(adapter.dispatch('local_timestamp')(ts, tz)) }}{% endmacro %}

{% macro default__local_timestamp(ts, tz) -%}
    case when {{ tz }} is null then {{ ts }} else ({{ ts }} at time zone 'UTC') at time zone {{ tz }} end
{%- endmacro %}

{% macro spark__local_timestamp(ts, tz) -%}
    case when {{ tz }} is null then {{ ts }} else from_utc_timestamp({{ ts }}, {{ tz }}) end
{%- endmacro %}
