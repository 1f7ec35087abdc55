{#- Client against server token counts of one kind (prompt or completion), as two columns:
    `<kind>_token_relative_difference`, |client - server| / server (at least 1, so a zero count divides nothing),
    and `is_<kind>_token_count_disagreeing`, apart by more than the tolerance: the larger of a share of the
    server's count and a number of tokens (vars token_count_tolerance_ratio, token_count_tolerance_tokens).
    Both null when either count is missing (the server reported none, or a row landed before schema v3). -#}
{% macro token_count_comparison(kind) -%}
    abs(client_{{ kind }}_tokens - server_{{ kind }}_tokens)
    / greatest(server_{{ kind }}_tokens, 1) as {{ kind }}_token_relative_difference,
    abs(client_{{ kind }}_tokens - server_{{ kind }}_tokens) > greatest(
        {{ var('token_count_tolerance_ratio') }} * server_{{ kind }}_tokens,
        {{ var('token_count_tolerance_tokens') }}
    ) as is_{{ kind }}_token_count_disagreeing
{%- endmacro %}
