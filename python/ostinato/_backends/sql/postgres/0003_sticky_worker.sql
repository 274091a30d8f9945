-- The worker that has a run cached since its last workflow task (NULL: none). Claims leave
-- the run's next task to that worker for a while, so it continues from its cached state
-- instead of another worker reading and replaying the whole history. Not indexed: it is
-- read only on rows already found by key, and an index on it would make every commit
-- rewrite the run's index entries.
ALTER TABLE {schema}.runs ADD COLUMN sticky_worker text;
