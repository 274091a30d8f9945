-- A paused run (docs/pausing.md): since when and why; NULL while it is not paused. Claims of
-- workflow and activity tasks skip the runs where paused_at is set. No index: few runs are
-- paused, and the claims meet them by key.
ALTER TABLE {schema}.runs ADD COLUMN paused_at float8;
ALTER TABLE {schema}.runs ADD COLUMN pause_reason text;
