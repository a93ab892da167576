-- LUX reference data, migration 1: the seven tables, mirroring the CSV files of
-- docs/reference-and-traffic.md. {schema} is replaced by the configured schema (quoted).
-- An open validity start is '-infinity' (valid_from is part of the key); other open times are NULL.

CREATE TABLE {schema}.regions (
    region_id text PRIMARY KEY,
    name text NOT NULL DEFAULT ''
);

CREATE TABLE {schema}.sites (
    site_id text PRIMARY KEY,
    region_id text NOT NULL REFERENCES {schema}.regions (region_id),
    name text NOT NULL DEFAULT '',
    city text NOT NULL DEFAULT ''
);

CREATE TABLE {schema}.manufacturers (
    manufacturer_id text PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    country text NOT NULL DEFAULT ''
);

CREATE TABLE {schema}.models (
    model_id text PRIMARY KEY,
    manufacturer_id text NOT NULL REFERENCES {schema}.manufacturers (manufacturer_id),
    name text NOT NULL DEFAULT '',
    equipment_type text NOT NULL,
    technology text NOT NULL
);

CREATE TABLE {schema}.equipment (
    equipment_id text NOT NULL,
    hostname text NOT NULL,
    ip_address inet,
    nas_identifier text,
    model_id text NOT NULL REFERENCES {schema}.models (model_id),
    site_id text NOT NULL REFERENCES {schema}.sites (site_id),
    status text NOT NULL DEFAULT 'in_service',
    valid_from timestamptz NOT NULL DEFAULT '-infinity',
    valid_to timestamptz,
    PRIMARY KEY (equipment_id, valid_from)
);
CREATE INDEX ON {schema}.equipment (model_id);
CREATE INDEX ON {schema}.equipment (site_id);

CREATE TABLE {schema}.error_codes (
    code text PRIMARY KEY,
    source_type text NOT NULL,
    label text NOT NULL DEFAULT '',
    category text NOT NULL,
    severity text NOT NULL,
    is_failure boolean NOT NULL DEFAULT false,
    is_drop boolean NOT NULL DEFAULT false,
    customer_impacting boolean NOT NULL DEFAULT false
);

CREATE TABLE {schema}.interventions (
    intervention_id text PRIMARY KEY,
    scope text NOT NULL,
    target_id text NOT NULL,
    kind text NOT NULL,
    planned_start timestamptz,
    planned_end timestamptz,
    actual_start timestamptz,
    actual_end timestamptz,
    suppress_alarms boolean NOT NULL DEFAULT false,
    exclude_from_kpi boolean NOT NULL DEFAULT false
);
