{#- percentile_cont's value (linear interpolation between order statistics) read off ranked rows: an aggregate over
    a group's rows where `rank_column` is each row's 1-based rank by `value_column` in the group and `count_column`
    the group's row count (the same in every row). Only the rows at the ranks read need be there. Position
    h = (count - 1) x fraction; the result is v[floor(h)] + (h - floor(h)) x (v[ceil(h)] - v[floor(h)]), 0-based,
    as DuckDB's quantile_cont and Spark's percentile compute it. For populations too large to hold in memory,
    where percentile_cont keeps a group's values: levels_aggregated's ITL ranks its gaps by counting them per
    microsecond and sorting only the microseconds read. -#}
{% macro ranked_percentile(value_column, rank_column, count_column, fraction) -%}
    {%- set position = '(' ~ count_column ~ ' - 1) * cast(' ~ fraction ~ ' as double)' -%}
    {%- set lower = 'max(case when ' ~ rank_column ~ ' = floor(' ~ position ~ ') + 1 then ' ~ value_column ~ ' end)' -%}
    {%- set upper = 'max(case when ' ~ rank_column ~ ' = ceil(' ~ position ~ ') + 1 then ' ~ value_column ~ ' end)' -%}
    {{ lower }} + ({{ position }} - floor({{ position }})) * ({{ upper }} - {{ lower }})
{%- endmacro %}
