{#- min, p25, p50, p75, max of one column as wide columns `<prefix>_min` ... `<prefix>_max`.
    Quartiles use quantile_cont (linear interpolation between order statistics, numpy's default). -#}
{% macro five_number_summary(column, prefix) -%}
    min({{ column }}) as {{ prefix }}_min,
    quantile_cont({{ column }}, 0.25) as {{ prefix }}_p25,
    quantile_cont({{ column }}, 0.50) as {{ prefix }}_p50,
    quantile_cont({{ column }}, 0.75) as {{ prefix }}_p75,
    max({{ column }}) as {{ prefix }}_max
{%- endmacro %}
