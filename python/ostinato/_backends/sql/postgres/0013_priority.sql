-- Priority (docs/queues.md). A run's priority orders its workflow tasks, an activity task's
-- its claims: ready work is taken by claim rank, visible_at - priority * 60 (one level is
-- worth 60 s of waiting: _queue_limits.PRIORITY_AGING), then by id. Priorities are 0 to 100,
-- so the rank is never later than visible_at and "rank <= now" bounds each claim's index walk
-- as "visible_at <= now" did; at priority 0 the rank is visible_at, the order of before.
ALTER TABLE {schema}.runs ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE {schema}.activity_tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;
-- The workflow claim walks the inbox, so each inbox row carries its run's priority. Starts
-- write it with the run; every other insert leaves it NULL and this trigger copies it from
-- the run (which exists before that statement), so no writer of the inbox has to know it.
ALTER TABLE {schema}.inbox ADD COLUMN priority integer;
CREATE FUNCTION {schema}.inbox_priority() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.priority IS NULL THEN
        NEW.priority := coalesce(
            (SELECT r.priority FROM {schema}.runs AS r
             WHERE r.instance_id = NEW.instance_id AND r.run_id = NEW.run_id), 0);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER inbox_priority BEFORE INSERT ON {schema}.inbox
    FOR EACH ROW EXECUTE FUNCTION {schema}.inbox_priority();
UPDATE {schema}.inbox SET priority = 0;
ALTER TABLE {schema}.inbox ALTER COLUMN priority SET NOT NULL;
-- The claims walk these in rank order. The (visible_at) indexes of migrations 1 and 2 stay,
-- for the wake-ups' "when is the next work visible".
CREATE INDEX inbox_by_rank ON {schema}.inbox ((visible_at - priority * 60), id);
CREATE INDEX activity_tasks_ready_by_rank
    ON {schema}.activity_tasks (queue, (visible_at - priority * 60), task_id)
    WHERE lease_expires_at IS NULL;
