-- ostinato SQLite schema, version 1.
-- Applied by SqliteBackend.open() under BEGIN IMMEDIATE and recorded in schema_version.
-- Times are REAL seconds since the Unix epoch (the backend's clock); events and payloads
-- are BLOBs stored byte for byte.

-- One row per run. id orders runs by creation (list_runs pages on it).
-- ready_at: not claimable before (start delay, back-off after a failed task).
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    closed_at REAL,
    history_length INTEGER NOT NULL DEFAULT 0,
    result BLOB,
    blocked_reason TEXT,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    ready_at REAL,
    lease_token TEXT,
    lease_expires_at REAL,
    parent_instance_id TEXT,
    parent_run_id TEXT,
    parent_command_id INTEGER,
    next_run_id TEXT,
    UNIQUE (instance_id, run_id)
);

CREATE INDEX runs_open_children ON runs (parent_instance_id, parent_run_id)
    WHERE status = 'running';

CREATE INDEX runs_ready ON runs (ready_at) WHERE ready_at IS NOT NULL;

-- The latest run of each instance (the one describe/signal/list_runs see).
CREATE TABLE instances (
    instance_id TEXT PRIMARY KEY,
    latest_run INTEGER NOT NULL
);

CREATE INDEX instances_latest ON instances (latest_run);

CREATE TABLE history (
    run INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (run, seq)
);

-- Pending inbound events; id is the arrival order. queue is the run's, copied here so a
-- claim finds visible work with one index range per queue.
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    queue TEXT NOT NULL,
    visible_at REAL NOT NULL,
    timer_id INTEGER,
    event BLOB NOT NULL
);

CREATE INDEX inbox_run ON inbox (run, id);

CREATE INDEX inbox_visible ON inbox (queue, visible_at);

-- Activity tasks. While leased, visible_at equals lease_expires_at, so "claimable" is just
-- visible_at <= now for queued, retrying and abandoned tasks alike.
CREATE TABLE activity_tasks (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    activity_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    queue TEXT NOT NULL,
    input BLOB NOT NULL,
    options BLOB NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    lease_token TEXT,
    lease_expires_at REAL,
    visible_at REAL NOT NULL,
    scheduled_at REAL NOT NULL,
    deadline REAL,
    heartbeat_details BLOB,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX activity_tasks_claim ON activity_tasks (queue, visible_at);

CREATE INDEX activity_tasks_run ON activity_tasks (run, activity_id);

CREATE TABLE vars (
    run INTEGER NOT NULL,
    name TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (run, name)
);
