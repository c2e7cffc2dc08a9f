{#- The rows of a CTE once per reporting segment: all, playlist type, tier, and both, as
    segment_type / segment_value columns in front of the CTE's own. -#}
{% macro funnel_segments(cte) %}
    select
        'all' as segment_type,
        'all' as segment_value,
        {{ cte }}.*
    from {{ cte }}
    union all
    select
        'playlist_type' as segment_type,
        playlist_type as segment_value,
        {{ cte }}.*
    from {{ cte }}
    union all
    select
        'tier' as segment_type,
        tier as segment_value,
        {{ cte }}.*
    from {{ cte }}
    union all
    select
        'playlist_type_tier' as segment_type,
        {{ dbt.concat(['playlist_type', "' | '", 'tier']) }} as segment_value,
        {{ cte }}.*
    from {{ cte }}
{% endmacro %}
