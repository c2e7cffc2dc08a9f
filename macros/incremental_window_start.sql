{#- First day an incremental run rebuilds: `incremental_lookback_days` before the newest day
    already built in this model. `where` limits which built rows count (far-future rows must
    not push the window into the future). Use as `day_column >= {{ incremental_window_start(...) }}`. -#}
{% macro incremental_window_start(date_column, where=none) -%}
    {%- set newest_day = 'max(' ~ date_column ~ ')' -%}
    (
        select {{ dbt.dateadd('day', -var('incremental_lookback_days'), newest_day) }}
        from {{ this }}{{ ' where ' ~ where if where }}
    )
{%- endmacro %}
