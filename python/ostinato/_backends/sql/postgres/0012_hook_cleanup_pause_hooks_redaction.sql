-- Hook delivery rows follow their run (docs/hooks.md, docs/retention.md): deleting runs
-- deletes their deliveries and their attempts in the same statement, whatever deletes them
-- (one statement-level trigger: a batch of 500 instances is one set-based delete).
CREATE INDEX hook_deliveries_run ON {schema}.hook_deliveries (instance_id, run_id);
DELETE FROM {schema}.hook_deliveries AS d WHERE NOT EXISTS (
    SELECT 1 FROM {schema}.runs AS r WHERE r.instance_id = d.instance_id AND r.run_id = d.run_id);
DELETE FROM {schema}.hook_attempts AS a WHERE NOT EXISTS (
    SELECT 1 FROM {schema}.hook_deliveries AS d WHERE d.delivery_id = a.delivery_id);
CREATE FUNCTION {schema}.drop_hook_deliveries_of_deleted_runs() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        DELETE FROM {schema}.hook_deliveries AS d
        USING deleted_runs AS r
        WHERE d.instance_id = r.instance_id AND d.run_id = r.run_id
        RETURNING d.delivery_id
    )
    DELETE FROM {schema}.hook_attempts WHERE delivery_id IN (SELECT delivery_id FROM gone);
    RETURN NULL;
END
$$;
CREATE TRIGGER hook_deliveries_of_deleted_runs AFTER DELETE ON {schema}.runs
REFERENCING OLD TABLE AS deleted_runs
FOR EACH STATEMENT EXECUTE FUNCTION {schema}.drop_hook_deliveries_of_deleted_runs();
-- "paused" hooks: a pause sets paused_at (not status), so it has its own trigger. Each pause
-- of a run is a change of its own, numbered by `pauses` (its id ends in ":paused:<n>"); the
-- delivery's `result` holds the pause reason (UTF-8), if any.
ALTER TABLE {schema}.runs ADD COLUMN pauses integer NOT NULL DEFAULT 0;
CREATE FUNCTION {schema}.record_pause_hook_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.hook_deliveries (delivery_id, instance_id, run_id, workflow_name,
                                          queue, status, occurred_at, result)
    SELECT NEW.instance_id || ':' || NEW.run_id || ':paused:' || NEW.pauses, NEW.instance_id,
           NEW.run_id, NEW.workflow_name, NEW.queue, 'paused', NEW.paused_at,
           convert_to(NEW.pause_reason, 'UTF8')
    FROM {schema}.hook_subscriptions s
    WHERE s.queue = NEW.queue AND s.subscribed_until >= NEW.paused_at
    ON CONFLICT (delivery_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER hook_deliveries_on_pause AFTER UPDATE OF paused_at ON {schema}.runs
FOR EACH ROW
WHEN (NEW.paused_at IS NOT NULL AND OLD.paused_at IS NULL)
EXECUTE FUNCTION {schema}.record_pause_hook_delivery();
-- Worker(redact_after=...): when a run was redacted, so that the sweep finds the closed runs
-- still to redact by index and skips the others without reading their history.
ALTER TABLE {schema}.runs ADD COLUMN redacted_at float8;
CREATE INDEX runs_to_redact ON {schema}.runs (closed_at)
    WHERE closed_at IS NOT NULL AND redacted_at IS NULL;
