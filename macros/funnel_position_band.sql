{#- Position band of the step from track k to k + 1 of a run: the interval between two funnel
    stages that contains the step ('01-02', '02-03', '03-05', '05-10', '10+' with the default
    stages), so a band's drop-off is the drop-off between two funnel stages, per step.
    Zero-padded labels sort in order as text. -#}
{% macro funnel_position_band(track_ordinal) -%}
    {%- set bounds = [1] + funnel_stage_tracks() -%}
    {%- set labels = [] -%}
    {%- for low in bounds[:-1] -%}
        {%- do labels.append("%02d-%02d" | format(low, bounds[loop.index])) -%}
    {%- endfor -%}
    case
    {%- for label in labels %}
        when {{ track_ordinal }} < {{ bounds[loop.index] }} then '{{ label }}'
    {%- endfor %}
        else '{{ "%02d" | format(bounds[-1]) }}+'
    end
{%- endmacro %}
