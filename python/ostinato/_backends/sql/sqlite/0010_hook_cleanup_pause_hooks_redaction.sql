-- Hook delivery rows follow their run (docs/hooks.md, docs/retention.md): deleting a run
-- deletes its deliveries and their attempts in the same transaction, whatever deletes it.
CREATE INDEX hook_deliveries_run ON hook_deliveries (instance_id, run_id);
DELETE FROM hook_attempts WHERE delivery_id IN (
    SELECT d.delivery_id FROM hook_deliveries d
    WHERE NOT EXISTS (SELECT 1 FROM runs r
                      WHERE r.instance_id = d.instance_id AND r.run_id = d.run_id));
DELETE FROM hook_deliveries WHERE NOT EXISTS (
    SELECT 1 FROM runs r WHERE r.instance_id = hook_deliveries.instance_id
                           AND r.run_id = hook_deliveries.run_id);
DELETE FROM hook_attempts WHERE delivery_id NOT IN (SELECT delivery_id FROM hook_deliveries);
CREATE TRIGGER hook_deliveries_of_deleted_run AFTER DELETE ON runs
BEGIN
    DELETE FROM hook_attempts WHERE delivery_id IN (
        SELECT delivery_id FROM hook_deliveries
        WHERE instance_id = OLD.instance_id AND run_id = OLD.run_id);
    DELETE FROM hook_deliveries WHERE instance_id = OLD.instance_id AND run_id = OLD.run_id;
END;
-- "paused" hooks: a pause sets paused_at (not status), so it has its own trigger. Each pause
-- of a run is a change of its own, numbered by `pauses` (its id ends in ":paused:<n>"); the
-- delivery's `result` holds the pause reason (UTF-8), if any.
ALTER TABLE runs ADD COLUMN pauses INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER hook_deliveries_on_pause AFTER UPDATE OF paused_at ON runs
WHEN NEW.paused_at IS NOT NULL AND OLD.paused_at IS NULL
BEGIN
    INSERT OR IGNORE INTO hook_deliveries (delivery_id, instance_id, run_id, workflow_name,
                                           queue, status, occurred_at, result)
    SELECT NEW.instance_id || ':' || NEW.run_id || ':paused:' || NEW.pauses, NEW.instance_id,
           NEW.run_id, NEW.workflow_name, NEW.queue, 'paused', NEW.paused_at,
           CAST(NEW.pause_reason AS BLOB)
    FROM hook_subscriptions s
    WHERE s.queue = NEW.queue AND s.subscribed_until >= NEW.paused_at;
END;
-- Worker(redact_after=...): when a run was redacted, so that the sweep finds the closed runs
-- still to redact by index and skips the others without reading their history.
ALTER TABLE runs ADD COLUMN redacted_at REAL;
CREATE INDEX runs_to_redact ON runs (closed_at) WHERE closed_at IS NOT NULL AND redacted_at IS NULL;
