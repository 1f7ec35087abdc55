{#- The sources on an engine that reads the landing zone itself (on-run-start, dbt_project.yml). On DuckDB there is
    nothing to do: collector.warehouse.refresh makes raw.* views over the landed files, the config table lives in the
    warehouse, and the pricing source reads its CSVs through external_location. -#}
{% macro create_sources() -%}
    {{ return(adapter.dispatch('create_sources', 'tokenbench')()) }}
{%- endmacro %}

{% macro default__create_sources() -%}
    select 1
{%- endmacro %}

{#- Spark: views over the landing zone's files (a view, unlike a table, never makes a folder where its path does not
    exist), made anew at every build so that runs landed since are read. The folders come from the environment
    variables the collector and the DuckDB profile use, relative to the directory dbt is started in
    (models_dbt/results and models_dbt/pricing link to the repo's). A run still streaming JSONL is not read here:
    only runs compacted to Parquet (ended or lost runs, which every `collector build` compacts). -#}
{% macro spark__create_sources() -%}
    {%- if not execute -%}
        {{ return('select 1') }}
    {%- endif -%}
    {%- set results = env_var('TOKENBENCH_RESULTS_DIR', 'results') -%}
    {#- The landing zone: <results>/raw, or a local mirror of an S3 one (collector build), or an s3a:// URL that a
        cluster's Spark reads through its own S3 connector. -#}
    {%- set raw = env_var('TOKENBENCH_RAW_DIR', results ~ '/raw') -%}
    {%- set pricing = env_var('TOKENBENCH_PRICING_DIR', 'pricing') -%}
    {%- for schema in ['raw', 'config', 'pricing'] -%}
        {%- do run_query('create database if not exists ' ~ schema) -%}
    {%- endfor -%}
    {#- Runs landed under older schemas lack newer columns: Parquet's schema merging reads them as null. -#}
    {%- do run_query('set spark.sql.parquet.mergeSchema = true') -%}
    {%- for node in graph.sources.values() if node.source_name == 'raw' and node.name != 'runs' -%}
        {#- Every run's files (requests.parquet; requests.s1.parquet, requests.s2.parquet of a sharded run) and the
            zero-row one in raw/_schema/, which has every column of the current schema. -#}
        {%- do run_query(
            'create or replace view raw.' ~ node.name ~ ' as select * from parquet.'
            ~ spark_path(raw ~ '/*/' ~ node.name ~ '*.parquet')
        ) -%}
    {%- endfor -%}
    {#- The manifests (run.json: one JSON object on one line) typed as the zero-row raw/_schema/runs.parquet. -#}
    {%- do run_query(
        'create or replace view raw.runs_columns as select * from parquet.' ~ spark_path(raw ~ '/_schema/runs.parquet')
    ) -%}
    {%- set columns = adapter.get_columns_in_relation(api.Relation.create(schema='raw', identifier='runs_columns')) -%}
    {%- set declared = [] -%}
    {%- for column in columns -%}
        {%- do declared.append('`' ~ column.name ~ '` ' ~ column.data_type) -%}
    {%- endfor -%}
    {%- do run_query(
        "create or replace view raw.runs as select manifest.* from (select from_json(value, '"
        ~ declared | join(', ') ~ "') as manifest from text." ~ spark_path(raw ~ '/*/run.json')
        ~ ') where manifest.run_id is not null'
    ) -%}
    {#- The budgets `collector build` recorded (the DuckDB warehouse's config.run_settings, exported beside it). -#}
    {%- do run_query(
        'create or replace view config.run_settings as select * from parquet.'
        ~ spark_path(results ~ '/config/run_settings.parquet')
    ) -%}
    {%- for node in graph.sources.values() if node.source_name == 'pricing' -%}
        {%- do run_query('drop table if exists pricing.' ~ node.name) -%}
        {%- do run_query(
            'create table pricing.' ~ node.name ~ " using csv options (path '"
            ~ (pricing ~ '/' ~ node.name ~ '.csv') | replace('\\', '\\\\') | replace("'", "\\'") ~ "', header 'true')"
        ) -%}
    {%- endfor -%}
    select 1
{%- endmacro %}

{#- A path as Spark's `format.`path`` file reference: backquoted, a backquote doubled. -#}
{% macro spark_path(path) -%}
    `{{ path | replace('`', '``') }}`
{%- endmacro %}

{#- Unit-test fixtures on Spark: a list (or struct, map) column given as JSON text, such as "[1, 2]" for
    content_chunk_offsets_ns, is parsed with from_json; dbt-spark's own safe_cast would paste the text in as SQL.
    Everything else is dbt-spark's cast. -#}
{% macro spark__safe_cast(field, type) -%}
    {%- set nested = type.lower().startswith('array') or type.lower().startswith('struct')
        or type.lower().startswith('map') -%}
    {%- if nested and field is string and field.startswith("'") -%}
        from_json({{ field }}, '{{ type }}')
    {%- else -%}
        cast({{ field }} as {{ type }})
    {%- endif -%}
{%- endmacro %}
