{#- SQL that DuckDB and Spark spell differently, one adapter-dispatched macro each, so that no model forks per
    engine. The duckdb__ spelling is the one the models used before (their DuckDB output is unchanged); the spark__
    one is its Spark SQL equivalent (Spark 4: `::` casts, QUALIFY, GROUP BY ALL, FILTER on aggregates and lateral
    column aliases need no macro there). Another engine (Trino/Athena) adds a <adapter>__ variant of each. -#}

{#- Continuous percentile (linear interpolation between order statistics, numpy's default) of `column`. -#}
{% macro percentile_cont(column, fraction) -%}
    {{ return(adapter.dispatch('percentile_cont', 'tokenbench')(column, fraction)) }}
{%- endmacro %}
{% macro duckdb__percentile_cont(column, fraction) -%}
    quantile_cont({{ column }}, {{ fraction }})
{%- endmacro %}
{% macro spark__percentile_cont(column, fraction) -%}
    percentile({{ column }}, {{ fraction }})
{%- endmacro %}

{#- Continuous percentiles of `column` at each of `fractions` (a list of numbers), as a list in that order: one
    aggregate state holds the column's values once for all of them (where a percentile_cont per fraction holds a
    copy each). Read an element with list_element. -#}
{% macro percentiles_cont(column, fractions) -%}
    {{ return(adapter.dispatch('percentiles_cont', 'tokenbench')(column, fractions)) }}
{%- endmacro %}
{% macro duckdb__percentiles_cont(column, fractions) -%}
    quantile_cont({{ column }}, [{{ fractions | join(', ') }}])
{%- endmacro %}
{% macro spark__percentiles_cont(column, fractions) -%}
    percentile({{ column }}, array({% for f in fractions %}cast({{ f }} as double){{ ', ' if not loop.last }}{% endfor %}))
{%- endmacro %}

{#- The element at 1-based `position` of a list; null for a null list. -#}
{% macro list_element(list_expression, position) -%}
    {{ return(adapter.dispatch('list_element', 'tokenbench')(list_expression, position)) }}
{%- endmacro %}
{% macro duckdb__list_element(list_expression, position) -%}
    list_extract({{ list_expression }}, {{ position }})
{%- endmacro %}
{% macro spark__list_element(list_expression, position) -%}
    element_at({{ list_expression }}, {{ position }})
{%- endmacro %}

{#- Some non-null value of `column` in the group (dbt.any_value keeps nulls on both engines). -#}
{% macro any_non_null(column) -%}
    {{ return(adapter.dispatch('any_non_null', 'tokenbench')(column)) }}
{%- endmacro %}
{% macro duckdb__any_non_null(column) -%}
    any_value({{ column }})
{%- endmacro %}
{% macro spark__any_non_null(column) -%}
    any_value({{ column }}, true)
{%- endmacro %}

{#- The value of `column` in the group's first row by `order_by`: a list of "column [asc|desc]
    [nulls first|last]" keys (nulls last where a key does not say, as DuckDB orders). The value may be null. -#}
{% macro first_ordered(column, order_by) -%}
    {{ return(adapter.dispatch('first_ordered', 'tokenbench')(column, order_by)) }}
{%- endmacro %}
{% macro duckdb__first_ordered(column, order_by) -%}
    first({{ column }} order by {{ order_by | join(', ') }})
{%- endmacro %}
{% macro spark__first_ordered(column, order_by) -%}
    {#- Sort the group's (keys, value) structs with a comparator that spells out each key's direction and nulls. -#}
    {%- set fields = [] -%}
    {%- set whens = [] -%}
    {%- for key in order_by -%}
        {%- set lowered = key | lower -%}
        {%- set k = 'k' ~ loop.index -%}
        {%- set first_null = -1 if 'nulls first' in lowered else 1 -%}
        {%- set lower_first = 1 if ' desc' in lowered else -1 -%}
        {%- do fields.append(key.split(' ')[0] ~ ' as ' ~ k) -%}
        {%- do whens.append('when l.' ~ k ~ ' is null and r.' ~ k ~ ' is not null then ' ~ first_null) -%}
        {%- do whens.append('when l.' ~ k ~ ' is not null and r.' ~ k ~ ' is null then ' ~ (0 - first_null)) -%}
        {%- do whens.append('when l.' ~ k ~ ' < r.' ~ k ~ ' then ' ~ lower_first) -%}
        {%- do whens.append('when l.' ~ k ~ ' > r.' ~ k ~ ' then ' ~ (0 - lower_first)) -%}
    {%- endfor -%}
    element_at(array_sort(
        collect_list(struct({{ fields | join(', ') }}, {{ column }} as v)),
        (l, r) -> case {{ whens | join(' ') }} else 0 end
    ), 1).v
{%- endmacro %}

{#- The distinct non-null values of `column`, sorted, joined by `separator`; null when there are none. -#}
{% macro string_agg_distinct_sorted(column, separator) -%}
    {{ return(adapter.dispatch('string_agg_distinct_sorted', 'tokenbench')(column, separator)) }}
{%- endmacro %}
{% macro duckdb__string_agg_distinct_sorted(column, separator) -%}
    string_agg(distinct {{ column }}, {{ separator }} order by {{ column }})
{%- endmacro %}
{% macro spark__string_agg_distinct_sorted(column, separator) -%}
    case when count({{ column }}) > 0 then array_join(array_sort(collect_set({{ column }})), {{ separator }}) end
{%- endmacro %}

{#- Every column of the relation in scope but `columns` (a list of names). -#}
{% macro star_except(columns) -%}
    {{ return(adapter.dispatch('star_except', 'tokenbench')(columns)) }}
{%- endmacro %}
{% macro duckdb__star_except(columns) -%}
    * exclude ({{ columns | join(', ') }})
{%- endmacro %}
{% macro spark__star_except(columns) -%}
    * except ({{ columns | join(', ') }})
{%- endmacro %}

{#- True for a finite double, false for +-infinity and NaN. -#}
{% macro is_finite(column) -%}
    {{ return(adapter.dispatch('is_finite', 'tokenbench')(column)) }}
{%- endmacro %}
{% macro duckdb__is_finite(column) -%}
    isfinite({{ column }})
{%- endmacro %}
{% macro spark__is_finite(column) -%}
    ({{ column }} not in (double('Infinity'), double('-Infinity')) and not isnan({{ column }}))
{%- endmacro %}

{#- JSON text -> a list of its elements as JSON text; null when the text is not a JSON list. -#}
{% macro json_to_list(json_text) -%}
    {{ return(adapter.dispatch('json_to_list', 'tokenbench')(json_text)) }}
{%- endmacro %}
{% macro duckdb__json_to_list(json_text) -%}
    try_cast({{ json_text }} as json[])
{%- endmacro %}
{% macro spark__json_to_list(json_text) -%}
    from_json({{ json_text }}, 'array<string>')
{%- endmacro %}

{#- The JSON value at `path` (a '$.a.b' path), as JSON (cast it to use it as a number). -#}
{% macro json_extract_value(json_text, path) -%}
    {{ return(adapter.dispatch('json_extract_value', 'tokenbench')(json_text, path)) }}
{%- endmacro %}
{% macro duckdb__json_extract_value(json_text, path) -%}
    json_extract({{ json_text }}, '{{ path }}')
{%- endmacro %}
{% macro spark__json_extract_value(json_text, path) -%}
    get_json_object({{ json_text }}, '{{ path }}')
{%- endmacro %}

{#- The JSON value at `path` as text (a string unquoted, anything else as JSON text). -#}
{% macro json_extract_text(json_text, path) -%}
    {{ return(adapter.dispatch('json_extract_text', 'tokenbench')(json_text, path)) }}
{%- endmacro %}
{% macro duckdb__json_extract_text(json_text, path) -%}
    json_extract_string({{ json_text }}, '{{ path }}')
{%- endmacro %}
{% macro spark__json_extract_text(json_text, path) -%}
    get_json_object({{ json_text }}, '{{ path }}')
{%- endmacro %}

{#- The list at `path` ('$.a.b', a JSON list) as a list of its elements: JSON, or text with as_text. -#}
{% macro json_extract_list(json_text, path, as_text=false) -%}
    {{ return(adapter.dispatch('json_extract_list', 'tokenbench')(json_text, path, as_text)) }}
{%- endmacro %}
{% macro duckdb__json_extract_list(json_text, path, as_text) -%}
    {{ 'json_extract_string' if as_text else 'json_extract' }}({{ json_text }}, '{{ path }}[*]')
{%- endmacro %}
{% macro spark__json_extract_list(json_text, path, as_text) -%}
    from_json(get_json_object({{ json_text }}, '{{ path }}'), 'array<string>')
{%- endmacro %}

{#- One row per element of `list_expression` (none for an empty or null list): the element as `value_name`
    (cast to `value_type` if given) and then its 1-based position as `position_name`. In a select list, with
    no other set-returning expression beside it. -#}
{% macro unnest_with_position(list_expression, value_name, position_name, value_type=none) -%}
    {%- set arguments = [list_expression, value_name, position_name, value_type] -%}
    {{ return(adapter.dispatch('unnest_with_position', 'tokenbench')(*arguments)) }}
{%- endmacro %}
{% macro duckdb__unnest_with_position(list_expression, value_name, position_name, value_type) -%}
    unnest({{ list_expression }}){{ '::' ~ value_type if value_type else '' }} as {{ value_name }},
    generate_subscripts({{ list_expression }}, 1) as {{ position_name }}
{%- endmacro %}
{% macro spark__unnest_with_position(list_expression, value_name, position_name, value_type) -%}
    inline(transform({{ list_expression }}, (element, i) -> named_struct(
        '{{ value_name }}', {{ 'cast(element as ' ~ value_type ~ ')' if value_type else 'element' }},
        '{{ position_name }}', i + 1
    )))
{%- endmacro %}

{#- The differences between consecutive elements of `list_expression` (a list column or expression of numbers):
    element i is list[i + 1] - list[i]; empty for a list of fewer than two elements, null for a null list. Computed
    within the row (no window, no sort), so a request's gaps cost no more than its list. -#}
{% macro list_differences(list_expression) -%}
    {{ return(adapter.dispatch('list_differences', 'tokenbench')(list_expression)) }}
{%- endmacro %}
{% macro duckdb__list_differences(list_expression) -%}
    list_transform(
        list_slice({{ list_expression }}, 2, len({{ list_expression }})), lambda later, i: later - {{ list_expression }}[i]
    )
{%- endmacro %}
{% macro spark__list_differences(list_expression) -%}
    zip_with(
        slice({{ list_expression }}, 2, greatest(size({{ list_expression }}) - 1, 0)),
        slice({{ list_expression }}, 1, greatest(size({{ list_expression }}) - 1, 0)),
        (later, earlier) -> later - earlier
    )
{%- endmacro %}

{#- Written after a CTE's `as`: compute the CTE where it is used, not once into a buffer. DuckDB buffers a CTE read
    twice (every row, every column); a wide one read twice is better scanned twice. Spark inlines CTEs itself. -#}
{% macro not_materialized() -%}
    {{ return(adapter.dispatch('not_materialized', 'tokenbench')()) }}
{%- endmacro %}
{% macro duckdb__not_materialized() -%}
    not materialized
{%- endmacro %}
{% macro spark__not_materialized() -%}
{%- endmacro %}
