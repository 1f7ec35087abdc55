-- One row per repeat of a level (an experiment's repeats_per_level), by the same definitions as
-- int_levels_aggregated (macros/levels_aggregated.sql): the marts give the spread of throughput and p95 across them.
{{ levels_aggregated(by_repeat=true) }}
