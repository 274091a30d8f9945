-- The worker that has a run cached since its last workflow task (NULL: none). Claims leave
-- the run's next task to that worker for a while, so it continues from its cached state
-- instead of another worker reading and replaying the whole history.
ALTER TABLE runs ADD COLUMN sticky_worker TEXT;
