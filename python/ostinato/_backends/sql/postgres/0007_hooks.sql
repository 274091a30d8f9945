-- Hooks (ostinato.hook): an outbox of run state changes, written by a trigger in the
-- transaction of the change (every statement that closes a run, set-based or not), while a
-- worker with hooks has subscribed the run's queue.
CREATE TABLE {schema}.hook_subscriptions (
    queue            text PRIMARY KEY,
    subscribed_until float8 NOT NULL
);
CREATE TABLE {schema}.hook_deliveries (
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    delivery_id   text PRIMARY KEY,
    instance_id   text NOT NULL,
    run_id        text NOT NULL,
    workflow_name text NOT NULL,
    queue         text NOT NULL,
    status        text NOT NULL,
    occurred_at   float8 NOT NULL,
    result        bytea
);
CREATE INDEX hook_deliveries_queue ON {schema}.hook_deliveries (queue, seq);
-- One row per (delivery, hook) once a worker claimed the pair.
CREATE TABLE {schema}.hook_attempts (
    delivery_id      text NOT NULL,
    hook             text NOT NULL,
    attempts         integer NOT NULL,
    state            text NOT NULL DEFAULT 'pending',
    visible_at       float8 NOT NULL,
    lease_token      text,
    lease_expires_at float8,
    last_error       text,
    PRIMARY KEY (delivery_id, hook)
);
CREATE FUNCTION {schema}.record_hook_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {schema}.hook_deliveries (delivery_id, instance_id, run_id, workflow_name, queue,
                                 status, occurred_at, result)
    SELECT NEW.instance_id || ':' || NEW.run_id || ':' || NEW.status, NEW.instance_id,
           NEW.run_id, NEW.workflow_name, NEW.queue, NEW.status, NEW.updated_at, NEW.result
    FROM {schema}.hook_subscriptions s
    WHERE s.queue = NEW.queue AND s.subscribed_until >= NEW.updated_at
    ON CONFLICT (delivery_id) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER hook_deliveries_on_status AFTER UPDATE OF status ON {schema}.runs
FOR EACH ROW
WHEN (NEW.status IS DISTINCT FROM OLD.status
      AND NEW.status IN ('completed', 'failed', 'canceled', 'terminated', 'timed_out', 'paused'))
EXECUTE FUNCTION {schema}.record_hook_delivery();
