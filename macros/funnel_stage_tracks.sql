{#- Track ordinals of the playlist funnel's middle stages (between 'started' and 'finished'),
    var funnel_stage_tracks, ascending. One place for the default: the run model, the funnel
    and the drop-off mart all read it here. -#}
{% macro funnel_stage_tracks() %}
    {{- return(var('funnel_stage_tracks') | map('int') | sort | list) -}}
{% endmacro %}
