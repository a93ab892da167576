-- LUX reference data, migration 2: every change to a reference table sends
-- NOTIFY lux_reference with the payload 'schema.table', so running pipelines reload at once.

CREATE FUNCTION {schema}.lux_reference_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lux_reference', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER lux_reference_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.regions
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lux_reference_notify();
CREATE TRIGGER lux_reference_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.sites
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lux_reference_notify();
CREATE TRIGGER lux_reference_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.manufacturers
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lux_reference_notify();
CREATE TRIGGER lux_reference_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.models
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lux_reference_notify();
CREATE TRIGGER lux_reference_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.equipment
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lux_reference_notify();
CREATE TRIGGER lux_reference_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.error_codes
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lux_reference_notify();
CREATE TRIGGER lux_reference_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.interventions
    FOR EACH STATEMENT EXECUTE FUNCTION {schema}.lux_reference_notify();
