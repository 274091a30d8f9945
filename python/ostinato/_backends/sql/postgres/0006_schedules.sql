-- Schedules (ostinato._schedules): one row each, written by compare-and-set on version.
CREATE TABLE {schema}.schedules (
    schedule_id   text PRIMARY KEY,
    workflow_name text NOT NULL,
    queue         text NOT NULL,
    args          bytea NOT NULL,
    spec          bytea NOT NULL,
    state         bytea NOT NULL,
    paused        boolean NOT NULL,
    next_fire_at  float8,
    version       bigint NOT NULL,
    created_at    float8 NOT NULL,
    updated_at    float8 NOT NULL
);
CREATE INDEX schedules_due ON {schema}.schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
