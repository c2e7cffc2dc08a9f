{#- The funnel marts' reporting segments: all, playlist type, tier, and both. -#}
{% macro funnel_segments(cte) %}
    {{ segment_rows(cte, [
        ['all', "'all'"],
        ['playlist_type', 'playlist_type'],
        ['tier', 'tier'],
        ['playlist_type_tier', dbt.concat(['playlist_type', "' | '", 'tier'])],
    ]) }}
{% endmacro %}
