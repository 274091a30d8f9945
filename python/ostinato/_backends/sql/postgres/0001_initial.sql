-- Initial schema of the PostgreSQL backend.
--
-- {schema} is replaced by the quoted schema name when the migration is applied. Times are
-- float8 seconds since the Unix epoch, read from the backend's clock (never now()), so tests
-- can run on virtual time. Events and payloads are bytea: opaque JSON bytes that may contain
-- \u0000 escapes, which jsonb refuses.

-- One row per workflow id: which run is the latest. Creating a run locks this row, so two
-- starts of the same id serialize.
CREATE TABLE {schema}.instances (
    instance_id   text PRIMARY KEY,
    latest_run_id text NOT NULL
);

CREATE TABLE {schema}.runs (
    instance_id       text NOT NULL,
    run_id            text NOT NULL,
    -- Creation order across all instances: list order and list cursors.
    ordinal           bigint GENERATED ALWAYS AS IDENTITY,
    workflow_name     text NOT NULL,
    queue             text NOT NULL,
    status            text NOT NULL DEFAULT 'running',
    created_at        float8 NOT NULL,
    updated_at        float8 NOT NULL,
    closed_at         float8,
    history_length    integer NOT NULL DEFAULT 0,
    result            bytea,
    blocked_reason    text,
    failed_attempts   integer NOT NULL DEFAULT 0,
    -- Not claimable before this time: start delay, back-off after a failed task.
    ready_at          float8,
    lease_token       text,
    lease_expires_at  float8,
    parent_instance_id text,
    parent_run_id     text,
    parent_command_id integer,
    next_run_id       text,
    -- The instance's latest run (the one instances.latest_run_id names), for listing.
    is_latest         boolean NOT NULL DEFAULT true,
    PRIMARY KEY (instance_id, run_id),
    CONSTRAINT runs_status_known CHECK (status IN (
        'running', 'completed', 'failed', 'canceled', 'terminated', 'continued_as_new',
        'timed_out'))
);

-- At most one open run per workflow id, whatever races the application has.
CREATE UNIQUE INDEX runs_one_open_per_instance ON {schema}.runs (instance_id)
    WHERE status = 'running';
CREATE UNIQUE INDEX runs_ordinal ON {schema}.runs (ordinal);
-- list_runs walks the latest runs newest first, optionally by status or workflow name.
CREATE INDEX runs_latest ON {schema}.runs (ordinal) WHERE is_latest;
CREATE INDEX runs_latest_by_status ON {schema}.runs (status, ordinal) WHERE is_latest;
CREATE INDEX runs_latest_by_name ON {schema}.runs (workflow_name, ordinal) WHERE is_latest;
CREATE INDEX runs_open_by_queue ON {schema}.runs (queue) WHERE status = 'running';
-- Open runs that are leased or waiting (start delay, back-off): few, scanned by wake-ups.
CREATE INDEX runs_open_not_ready ON {schema}.runs (queue)
    WHERE status = 'running' AND (lease_expires_at IS NOT NULL OR ready_at IS NOT NULL);
CREATE INDEX runs_children ON {schema}.runs (parent_instance_id, parent_run_id)
    WHERE parent_instance_id IS NOT NULL AND status = 'running';

CREATE TABLE {schema}.history (
    instance_id text NOT NULL,
    run_id      text NOT NULL,
    seq         integer NOT NULL,
    event       bytea NOT NULL,
    PRIMARY KEY (instance_id, run_id, seq),
    FOREIGN KEY (instance_id, run_id) REFERENCES {schema}.runs ON DELETE CASCADE
);

-- Pending inbound events of open runs, oldest first by id. Timers are rows whose visible_at
-- is the fire time.
CREATE TABLE {schema}.inbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id text NOT NULL,
    run_id      text NOT NULL,
    visible_at  float8 NOT NULL,
    timer_id    integer,
    event       bytea NOT NULL,
    FOREIGN KEY (instance_id, run_id) REFERENCES {schema}.runs ON DELETE CASCADE
);
CREATE INDEX inbox_by_run ON {schema}.inbox (instance_id, run_id, id);
CREATE INDEX inbox_by_visible_at ON {schema}.inbox (visible_at);

CREATE TABLE {schema}.activity_tasks (
    task_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id       text NOT NULL,
    run_id            text NOT NULL,
    activity_id       integer NOT NULL,
    -- UTF-8 of the activity name: text cannot hold NUL characters, Python strings can.
    name              bytea NOT NULL,
    queue             text NOT NULL,
    input             bytea NOT NULL,
    options           bytea NOT NULL,
    deadline          float8,
    scheduled_at      float8 NOT NULL,
    visible_at        float8 NOT NULL,
    attempt           integer NOT NULL DEFAULT 0,
    lease_token       text,
    lease_expires_at  float8,
    heartbeat_details bytea,
    cancel_requested  boolean NOT NULL DEFAULT false,
    FOREIGN KEY (instance_id, run_id) REFERENCES {schema}.runs ON DELETE CASCADE
);
CREATE INDEX activity_tasks_ready ON {schema}.activity_tasks (queue, visible_at)
    WHERE lease_expires_at IS NULL;
CREATE INDEX activity_tasks_leased ON {schema}.activity_tasks (queue, lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
CREATE INDEX activity_tasks_by_run ON {schema}.activity_tasks (instance_id, run_id, activity_id);

-- Runtime variables (workflow.set_var), per run.
CREATE TABLE {schema}.vars (
    instance_id text NOT NULL,
    run_id      text NOT NULL,
    name        bytea NOT NULL,  -- UTF-8 of the name (may contain NUL, unlike text)
    value       bytea NOT NULL,
    PRIMARY KEY (instance_id, run_id, name),
    FOREIGN KEY (instance_id, run_id) REFERENCES {schema}.runs ON DELETE CASCADE
);
