{#- min, p25, p50, p75, max of one column as wide columns `<prefix>_min` ... `<prefix>_max`.
    Quartiles use percentile_cont (macros/cross_engine.sql): linear interpolation, numpy's default. -#}
{% macro five_number_summary(column, prefix) -%}
    min({{ column }}) as {{ prefix }}_min,
    {{ percentile_cont(column, 0.25) }} as {{ prefix }}_p25,
    {{ percentile_cont(column, 0.50) }} as {{ prefix }}_p50,
    {{ percentile_cont(column, 0.75) }} as {{ prefix }}_p75,
    max({{ column }}) as {{ prefix }}_max
{%- endmacro %}
