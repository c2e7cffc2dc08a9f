{#- Playlist-completion funnel: runs reaching each stage (started, reached track k for k in
    var funnel_stage_tracks, finished) per segment, with conversion from the start and from
    the previous stage and the drop-off between stages. A run reached track k when it played
    k tracks or finished the playlist (fct_playlist_runs). Every run counts, including runs cut
    by the session play cap (see fct_playlist_dropoff for censoring-aware continuation). -#}
{%- set stage_tracks = funnel_stage_tracks() -%}

with runs as (
    select
        playlist_type,
        tier,
        run_track_count,
        is_finished
    from {{ ref('fct_playlist_runs') }}
),

-- counted once per (playlist type, tier, length, finished), then summed per segment: the
-- segments repeat counts, not runs
runs_counted as (
    select
        playlist_type,
        tier,
        run_track_count,
        is_finished,
        count(*) as run_count
    from runs
    group by
        playlist_type,
        tier,
        run_track_count,
        is_finished
),

segmented as (
    {{ funnel_segments('runs_counted') }}
),

stages_counted as (
    select
        segment_type,
        segment_value,
        sum(run_count) as started_run_count,
        {%- for k in stage_tracks %}
            sum(case
                when run_track_count >= {{ k }} or is_finished then run_count else 0
            end) as reached_track_{{ k }}_run_count,
        {%- endfor %}
        sum(case when is_finished then run_count else 0 end) as finished_run_count
    from segmented
    group by
        segment_type,
        segment_value
),

{%- set stages = [('started', 'null', 'started_run_count')] -%}
{%- for k in stage_tracks -%}
    {%- do stages.append(('reached_track_' ~ k, k, 'reached_track_' ~ k ~ '_run_count')) -%}
{%- endfor -%}
{%- do stages.append(('finished', 'null', 'finished_run_count')) %}

stages_unpivoted as (
    {%- for name, ordinal, count_column in stages %}
        select
            segment_type,
            segment_value,
            {{ loop.index }} as stage_number,
            '{{ name }}' as stage_name,
            cast({{ ordinal }} as {{ dbt.type_int() }}) as stage_track_ordinal,
            {{ count_column }} as run_count,
            {{ stages[loop.index0 - 1][2] if not loop.first else count_column }} as previous_stage_run_count,
            started_run_count
        from stages_counted
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

final as (
    select
        segment_type,
        segment_value,
        cast(stage_number as {{ dbt.type_int() }}) as stage_number,
        stage_name,
        stage_track_ordinal,
        cast(run_count as {{ dbt.type_bigint() }}) as run_count,
        cast(previous_stage_run_count as {{ dbt.type_bigint() }}) as previous_stage_run_count,
        cast(started_run_count as {{ dbt.type_bigint() }}) as started_run_count,
        cast(run_count as {{ dbt.type_float() }}) / started_run_count as conversion_from_start_rate,
        case
            when previous_stage_run_count > 0
                then cast(run_count as {{ dbt.type_float() }}) / previous_stage_run_count
        end as conversion_from_previous_rate,
        cast(previous_stage_run_count - run_count as {{ dbt.type_bigint() }})
            as drop_off_run_count,
        case
            when previous_stage_run_count > 0
                then
                    cast(previous_stage_run_count - run_count as {{ dbt.type_float() }})
                    / previous_stage_run_count
        end as drop_off_from_previous_rate
    from stages_unpivoted
)

select * from final
