-- Hooks (ostinato.hook): an outbox of run state changes, written by a trigger in the
-- transaction of the change, while a worker with hooks has subscribed the run's queue.
CREATE TABLE hook_subscriptions (
    queue TEXT PRIMARY KEY,
    subscribed_until REAL NOT NULL
);
CREATE TABLE hook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL UNIQUE,
    instance_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    occurred_at REAL NOT NULL,
    result BLOB
);
CREATE INDEX hook_deliveries_queue ON hook_deliveries (queue, seq);
-- One row per (delivery, hook) once a worker claimed the pair.
CREATE TABLE hook_attempts (
    delivery_id TEXT NOT NULL,
    hook TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    visible_at REAL NOT NULL,
    lease_token TEXT,
    lease_expires_at REAL,
    last_error TEXT,
    PRIMARY KEY (delivery_id, hook)
);
CREATE TRIGGER hook_deliveries_on_status AFTER UPDATE OF status ON runs
WHEN NEW.status <> OLD.status
    AND NEW.status IN ('completed', 'failed', 'canceled', 'terminated', 'timed_out', 'paused')
BEGIN
    INSERT OR IGNORE INTO hook_deliveries (delivery_id, instance_id, run_id, workflow_name,
                                           queue, status, occurred_at, result)
    SELECT NEW.instance_id || ':' || NEW.run_id || ':' || NEW.status, NEW.instance_id,
           NEW.run_id, NEW.workflow_name, NEW.queue, NEW.status, NEW.updated_at, NEW.result
    FROM hook_subscriptions s
    WHERE s.queue = NEW.queue AND s.subscribed_until >= NEW.updated_at;
END;
