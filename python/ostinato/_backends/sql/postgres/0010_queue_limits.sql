-- Queue limits (docs/queues.md): one row per limited queue, locked FOR UPDATE by every claim
-- on that queue so concurrent claimers count and claim one after the other; and the start
-- times of the attempts claimed on rate-limited queues (a sliding-window log).
CREATE TABLE {schema}.queue_limits (
    queue          text PRIMARY KEY,
    max_concurrent integer,
    rate_count     integer,
    rate_period    float8,
    max_concurrent_per_key integer
);
CREATE TABLE {schema}.queue_starts (
    queue      text NOT NULL,
    started_at float8 NOT NULL
);
CREATE INDEX queue_starts_by_queue ON {schema}.queue_starts (queue, started_at);
CREATE INDEX activity_tasks_in_flight ON {schema}.activity_tasks (queue, lease_expires_at)
    WHERE lease_token IS NOT NULL;
