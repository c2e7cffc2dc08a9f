{#- Every valid play with its session, its place in the session and context run, and what is
    known about its track, playlist and hour: the union of int_plays_sessionized_even_users
    and int_plays_sessionized_odd_users, which hold the plays of disjoint sets of users and
    are built at once (macros/plays_sessionized.sql).

    A union at the top, not import CTEs: PostgreSQL flattens only a top-level UNION ALL of
    plain selects into scans of the two tables, so that a reader's columns and filters reach
    each table's scan and day index (behind CTEs every read projected every column of every
    play first, a second more per read at 200,000 sessions). -#}
{{ config(materialized='view') }}

select * from {{ ref('int_plays_sessionized_even_users') }}
union all
select * from {{ ref('int_plays_sessionized_odd_users') }}
