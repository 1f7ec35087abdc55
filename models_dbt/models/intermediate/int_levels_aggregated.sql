-- A level's figures over all of its requests, its repeats pooled (each repeat's windows kept apart). The SQL is the
-- macro levels_aggregated (macros/levels_aggregated.sql), shared with int_level_repeats_aggregated (a row per repeat).
{{ levels_aggregated(by_repeat=false) }}
