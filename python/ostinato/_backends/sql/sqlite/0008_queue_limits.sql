-- Queue limits (docs/queues.md): one row per limited queue, and the start times of the
-- attempts claimed on rate-limited queues (a sliding-window log, pruned as claims go).
CREATE TABLE queue_limits (
    queue TEXT PRIMARY KEY,
    max_concurrent INTEGER,
    rate_count INTEGER,
    rate_period REAL,
    max_concurrent_per_key INTEGER
);

CREATE TABLE queue_starts (
    queue TEXT NOT NULL,
    started_at REAL NOT NULL
);

CREATE INDEX queue_starts_by_queue ON queue_starts (queue, started_at);

CREATE INDEX activity_tasks_in_flight ON activity_tasks (queue, lease_expires_at);
