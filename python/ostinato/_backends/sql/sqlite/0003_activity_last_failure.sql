-- The failure of an activity's last failed attempt while it waits for its retry, so that
-- describe can say why an activity is still pending.
ALTER TABLE activity_tasks ADD COLUMN last_failure BLOB;
