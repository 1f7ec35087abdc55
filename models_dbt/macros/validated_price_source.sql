{#- The `price_source` var, checked: a typo fails the build at compile time instead of pricing nothing. -#}
{% macro validated_price_source() -%}
    {%- set value = var('price_source', 'current') -%}
    {%- if value not in ['current', 'recorded'] -%}
        {{ exceptions.raise_compiler_error("var price_source must be 'current' or 'recorded', got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ value }}
{%- endmacro %}
