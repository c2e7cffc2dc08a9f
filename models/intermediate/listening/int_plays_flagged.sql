{#- Every deduplicated event with all its quality flags: the union of
    int_plays_flagged_even_ids and int_plays_flagged_odd_ids, which hold the events of
    disjoint sets of play_ids and are built at once (macros/plays_flagged.sql). A union at the
    top, not import CTEs: PostgreSQL then flattens it into scans of the two tables, which a
    reader's columns and day filters reach (int_plays_sessionized says more). -#}
{{ config(materialized='view') }}

select * from {{ ref('int_plays_flagged_even_ids') }}
union all
select * from {{ ref('int_plays_flagged_odd_ids') }}
