-- Schedules (ostinato._schedules): one row each, written by compare-and-set on version.
CREATE TABLE schedules (
    schedule_id TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    queue TEXT NOT NULL,
    args BLOB NOT NULL,
    spec BLOB NOT NULL,
    state BLOB NOT NULL,
    paused INTEGER NOT NULL,
    next_fire_at REAL,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
