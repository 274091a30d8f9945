-- A paused run (docs/pausing.md): since when and why; NULL while it is not paused. Claims of
-- workflow and activity tasks skip the runs where paused_at is set.
ALTER TABLE runs ADD COLUMN paused_at REAL;
ALTER TABLE runs ADD COLUMN pause_reason TEXT;
