{#- The fewest samples a percentile needs for its tail to hold one sample: 20 for p95, 100 for p99. Fewer,
    and the percentile is the slowest request (or an interpolation towards it), not a tail estimate. -#}
{% macro min_samples_for_percentile(percentile) -%}
    {{ ((100 / (100 - percentile)) | round(0, 'ceil')) | int }}
{%- endmacro %}
