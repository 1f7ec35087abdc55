{#- Checks of raw values, for the staging models: each yields null when the value is sane, else a short reason
    naming the column and the raw value. A value that did not fit its column when landed (e.g. a token count of
    3e9 in an INTEGER) reads as null, so a required value that is null is rejected with a reason that says so. -#}

{% macro missing_reason(column, required_when='true') -%}
    case
        when {{ column }} is null and ({{ required_when }})
            then '{{ column }} missing (absent, or not a value that fits its column, in the landed file)'
    end
{%- endmacro %}

{#- `max_value` may be a number or another column; none for no upper bound. -#}
{% macro range_reason(column, min_value, max_value=none, required_when='true') -%}
    {%- if max_value is none -%}
        {%- set out_of_range = column ~ ' < ' ~ min_value -%}
        {%- set bounds = ' below ' ~ min_value -%}
    {%- else -%}
        {%- set out_of_range = column ~ ' < ' ~ min_value ~ ' or ' ~ column ~ ' > ' ~ max_value -%}
        {%- set bounds = ' outside [' ~ min_value ~ ', ' ~ max_value ~ ']' -%}
    {%- endif -%}
    case
        when {{ column }} is null and ({{ required_when }})
            then '{{ column }} missing (absent, or not a value that fits its column, in the landed file)'
        when {{ out_of_range }}
            then '{{ column }} ' || cast({{ column }} as string) || '{{ bounds }}'
    end
{%- endmacro %}

{#- A price from a run manifest (JSON text): null if absent, else it must be a finite number >= 0. -#}
{% macro price_reason(json_text, name) -%}
    case
        when {{ json_text }} is null then null
        when try_cast({{ json_text }} as double) is null then '{{ name }} ''' || {{ json_text }} || ''' is not a number'
        when not {{ is_finite('try_cast(' ~ json_text ~ ' as double)') }} or try_cast({{ json_text }} as double) < 0
            then '{{ name }} ' || {{ json_text }} || ' is not a finite price >= 0'
    end
{%- endmacro %}
