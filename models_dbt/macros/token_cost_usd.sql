{#- What a token-priced API charges for `prompt_tokens` and `completion_tokens` (column expressions) at the
    prices relation's per-1M-token rates: the one token-cost formula of fct_requests (one request),
    fct_concurrency_metrics (the mean transaction) and fct_experiment_costs (all successful requests). -#}
{% macro token_cost_usd(prompt_tokens, completion_tokens, prices='prices') -%}
    {{ prompt_tokens }} * {{ prices }}.usd_per_1m_input_tokens / 1000000
    + {{ completion_tokens }} * {{ prices }}.usd_per_1m_output_tokens / 1000000
{%- endmacro %}
