-- The QoE indicators: one row per (window start, dimension, value), upserted from the qoe topic
-- (the columns are the fields of its records, lux.qoe.v1). `{schema}` is the quoted schema name.
CREATE TABLE IF NOT EXISTS {schema}.qoe_indicators (
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    dimension text NOT NULL,
    value text NOT NULL,
    events bigint NOT NULL,
    attempts bigint NOT NULL,
    setup_successes bigint NOT NULL,
    setup_success_rate double precision,
    auth_failures bigint NOT NULL,
    auth_failure_rate double precision,
    stops bigint NOT NULL,
    drops bigint NOT NULL,
    drop_rate double precision,
    short_sessions bigint NOT NULL,
    short_session_ratio double precision,
    failures bigint NOT NULL,
    affected_subscribers bigint NOT NULL,
    subscriber_sketch text NOT NULL,
    duration_count bigint NOT NULL,
    duration_sum_s bigint NOT NULL,
    duration_min_s bigint,
    duration_max_s bigint,
    duration_buckets bigint[] NOT NULL,
    top_error_codes jsonb NOT NULL,
    excluded_events bigint NOT NULL,
    PRIMARY KEY (window_start, dimension, value)
);

-- Reports read a dimension's values over a period.
CREATE INDEX IF NOT EXISTS qoe_indicators_dimension_time ON {schema}.qoe_indicators (dimension, window_start);
