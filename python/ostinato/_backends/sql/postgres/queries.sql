-- Queries of the PostgreSQL backend, one named block each ("-- name: NAME" up to the next).
--
-- {schema} is replaced by the quoted schema name when the file is loaded; everything else is
-- a %(name)s parameter. Times are the backend clock's, passed in as %(now)s. Rows of runs are
-- locked FOR NO KEY UPDATE, which does not conflict with the KEY SHARE locks that foreign
-- keys take when other transactions insert inbox rows for the same run.

-- name: run_columns
-- (not a query: the column list of RunInfo, shared by describe and list_runs)
r.instance_id, r.run_id, r.workflow_name, r.queue, r.status, r.created_at, r.updated_at,
r.closed_at, r.history_length, r.result, r.blocked_reason, r.parent_instance_id,
r.parent_run_id, r.parent_command_id, r.next_run_id, r.tags, r.paused_at, r.pause_reason,
r.priority

-- ---- schema ---------------------------------------------------------------------------------

-- name: schema_versions
SELECT version FROM {schema}.schema_version ORDER BY version

-- name: record_schema_version
INSERT INTO {schema}.schema_version (version, name) VALUES (%(version)s, %(name)s)

-- ---- creating runs ------------------------------------------------------------------------

-- name: insert_instance
-- A new workflow id; returns nothing when the id is known (then lock_instance decides).
INSERT INTO {schema}.instances (instance_id, latest_run_id)
VALUES (%(instance_id)s, %(run_id)s)
ON CONFLICT (instance_id) DO NOTHING
RETURNING instance_id

-- name: lock_instance
-- Serializes starts of one workflow id. Run alone: the next statement then sees what a start
-- that held the lock before us committed (a join in this statement would not).
SELECT latest_run_id FROM {schema}.instances WHERE instance_id = %(instance_id)s FOR UPDATE

-- name: latest_run_state
SELECT r.status,
       EXISTS (SELECT 1 FROM {schema}.runs AS same
               WHERE same.instance_id = r.instance_id AND same.run_id = %(run_id)s)
           AS run_id_taken
FROM {schema}.runs AS r
WHERE r.instance_id = %(instance_id)s AND r.run_id = %(latest_run_id)s

-- name: set_latest_run
-- Before inserting a new run of a known instance: the old latest run is no longer listed.
WITH previous AS (
    UPDATE {schema}.runs SET is_latest = false
    WHERE instance_id = %(instance_id)s AND is_latest
)
UPDATE {schema}.instances SET latest_run_id = %(run_id)s WHERE instance_id = %(instance_id)s

-- name: insert_run
-- The run and its first inbox events (workflow_started, and timed_out at the deadline).
WITH run AS (
    INSERT INTO {schema}.runs (
        instance_id, run_id, workflow_name, queue, created_at, updated_at, ready_at,
        parent_instance_id, parent_run_id, parent_command_id, tags, priority)
    VALUES (
        %(instance_id)s, %(run_id)s, %(workflow_name)s, %(queue)s, %(now)s, %(now)s,
        %(ready_at)s, %(parent_instance_id)s, %(parent_run_id)s, %(parent_command_id)s,
        %(tags)s::jsonb, %(priority)s)
    RETURNING instance_id, run_id, priority
)
INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event, priority)
SELECT run.instance_id, run.run_id, e.visible_at, e.event, run.priority
FROM run, unnest(%(visible_ats)b::float8[], %(events)b::bytea[]) WITH ORDINALITY
    AS e(visible_at, event, ord)
ORDER BY e.ord

-- ---- delivering events --------------------------------------------------------------------

-- name: deliver_to_open_run
-- Put an event in the inbox of the instance's open run; returns its queue, or nothing.
-- Used inside workflow-task commits, which hold their own run's lock: waiting for another
-- run's lock there could deadlock with a commit of that run signalling back, so the share
-- lock is taken NOWAIT. A commit in progress on the target (it may close the run, or
-- continue it as new) makes this fail with lock_not_available, and the whole commit is
-- retried a moment later (PostgresBackend._run), when the target's fate is settled. Never
-- inserting next to a closing commit is what keeps the event from being lost with the run.
WITH target AS (
    SELECT instance_id, run_id, queue FROM {schema}.runs
    WHERE instance_id = %(instance_id)s AND status = 'running'
    FOR SHARE NOWAIT
), delivered AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event)
    SELECT instance_id, run_id, %(now)s, %(event)s FROM target
)
SELECT queue FROM target

-- name: deliver_to_open_run_waiting
-- The same for a client (which holds no other lock): the share lock waits for a commit in
-- progress on the run, so an event is never put in the inbox of a run that such a commit
-- closes (it would be lost with the run).
WITH target AS (
    SELECT instance_id, run_id, queue FROM {schema}.runs
    WHERE instance_id = %(instance_id)s AND status = 'running'
    FOR SHARE
), delivered AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event)
    SELECT instance_id, run_id, %(now)s, %(event)s FROM target
)
SELECT queue FROM target

-- name: deliver_to_run
-- Put an event in the inbox of one run if it is open; returns its queue, or nothing.
WITH target AS (
    SELECT instance_id, run_id, queue FROM {schema}.runs
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
), delivered AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event)
    SELECT instance_id, run_id, %(now)s, %(event)s FROM target
)
SELECT queue FROM target

-- name: latest_status
SELECT r.status
FROM {schema}.instances AS i
JOIN {schema}.runs AS r ON r.instance_id = i.instance_id AND r.run_id = i.latest_run_id
WHERE i.instance_id = %(instance_id)s

-- name: notify
SELECT pg_notify(n.channel, n.payload)
FROM unnest(%(channels)b::text[], %(payloads)b::text[]) AS n(channel, payload)

-- ---- reading --------------------------------------------------------------------------------

-- name: describe_latest
SELECT {run_columns}
FROM {schema}.instances AS i
JOIN {schema}.runs AS r ON r.instance_id = i.instance_id AND r.run_id = i.latest_run_id
WHERE i.instance_id = %(instance_id)s

-- name: describe_run
SELECT {run_columns}
FROM {schema}.runs AS r
WHERE r.instance_id = %(instance_id)s AND r.run_id = %(run_id)s

-- name: previous_runs
-- The runs a run continued from (continue-as-new), newest first: each names the next one in
-- next_run_id.
WITH RECURSIVE back(run_id, depth) AS (
    SELECT run_id, 1 FROM {schema}.runs
    WHERE instance_id = %(instance_id)s AND next_run_id = %(run_id)s
    UNION ALL
    SELECT r.run_id, b.depth + 1 FROM back AS b
    JOIN {schema}.runs AS r ON r.instance_id = %(instance_id)s AND r.next_run_id = b.run_id
    WHERE b.depth < %(limit)s
)
SELECT run_id FROM back ORDER BY depth

-- name: history_latest
-- One row with a NULL event when the run has no history; no row when there is no such run.
-- Every row carries the run's id and history_length (checked against the rows found).
SELECT h.event, r.run_id, r.history_length
FROM {schema}.instances AS i
JOIN {schema}.runs AS r ON r.instance_id = i.instance_id AND r.run_id = i.latest_run_id
LEFT JOIN {schema}.history AS h ON h.instance_id = r.instance_id AND h.run_id = r.run_id
WHERE i.instance_id = %(instance_id)s
ORDER BY h.seq

-- name: history_run
SELECT h.event, r.run_id, r.history_length
FROM {schema}.runs AS r
LEFT JOIN {schema}.history AS h ON h.instance_id = r.instance_id AND h.run_id = r.run_id
WHERE r.instance_id = %(instance_id)s AND r.run_id = %(run_id)s
ORDER BY h.seq

-- name: list_runs
-- Latest runs newest first. Run unprepared, so each call is planned with its own values: the
-- filters not asked for fold away and the planner picks the partial index that fits (by
-- status, workflow name, queue, or the GIN index of tags for `tags @>`).
SELECT {run_columns}, r.ordinal
FROM {schema}.runs AS r
WHERE r.is_latest
  AND (%(status)s::text IS NULL OR r.status = %(status)s::text)
  AND (%(workflow_name)s::text IS NULL OR r.workflow_name = %(workflow_name)s::text)
  AND (%(queue)s::text IS NULL OR r.queue = %(queue)s::text)
  AND (%(tags)s::jsonb IS NULL OR r.tags @> %(tags)s::jsonb)
  AND (%(started_after)s::float8 IS NULL OR r.created_at >= %(started_after)s::float8)
  AND (%(started_before)s::float8 IS NULL OR r.created_at < %(started_before)s::float8)
  AND (%(closed_after)s::float8 IS NULL OR r.closed_at >= %(closed_after)s::float8)
  AND (%(blocked)s::boolean IS NULL
       OR (r.blocked_reason IS NOT NULL) = %(blocked)s::boolean)
  AND (%(paused)s::boolean IS NULL OR (r.paused_at IS NOT NULL) = %(paused)s::boolean)
  AND r.ordinal < coalesce(%(before)s::bigint, 9223372036854775807)
ORDER BY r.ordinal DESC
LIMIT %(limit)s

-- name: pause_run
-- pause(): the latest run, if open and not paused yet. Rows: 1 when it was paused now.
UPDATE {schema}.runs
SET paused_at = %(now)s, pause_reason = %(reason)s, pauses = pauses + 1
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
  AND paused_at IS NULL
RETURNING 1

-- name: unpause_run
-- resume() of a paused run. Rows: the queues of its work (the run's and its activities').
WITH unpaused AS (
    UPDATE {schema}.runs
    SET paused_at = NULL, pause_reason = NULL
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
      AND paused_at IS NOT NULL
    RETURNING queue
)
SELECT 'workflow', queue FROM unpaused
UNION
SELECT 'activity', t.queue FROM {schema}.activity_tasks AS t
WHERE t.instance_id = %(instance_id)s AND t.run_id = %(run_id)s
  AND EXISTS (SELECT 1 FROM unpaused)

-- name: retry_blocked_now
-- resume(): the latest run, if blocked on a failing workflow task, is retried at once.
-- Rows: its queue when it was changed.
UPDATE {schema}.runs
SET ready_at = NULL
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
  AND failed_attempts > 0 AND ready_at IS NOT NULL
RETURNING queue

-- name: run_tags
-- The tags and priority of a run (a continue-as-new hands them to the next run).
SELECT r.tags, r.priority FROM {schema}.runs AS r
WHERE r.instance_id = %(instance_id)s AND r.run_id = %(run_id)s

-- name: get_vars
-- One row with NULL name when the latest run has no variables; no row for an unknown id.
SELECT v.name, v.value
FROM {schema}.instances AS i
LEFT JOIN {schema}.vars AS v ON v.instance_id = i.instance_id AND v.run_id = i.latest_run_id
WHERE i.instance_id = %(instance_id)s

-- name: stats_runs
-- Latest runs counted by workflow name, status, blocked- and paused-ness (for dashboards).
SELECT r.workflow_name, r.status, r.blocked_reason IS NOT NULL, count(*),
       r.status = 'running' AND r.paused_at IS NOT NULL
FROM {schema}.runs AS r
WHERE r.is_latest
GROUP BY 1, 2, 3, 5
ORDER BY 1, 2, 3, 5

-- name: stats_workflow_backlog
-- Open runs a worker could claim now (stickiness aside), per queue, with since when.
SELECT queue, count(*), min(since) FROM (
    SELECT r.queue, greatest(min(i.visible_at), coalesce(r.ready_at, 0)) AS since
    FROM {schema}.inbox AS i
    JOIN {schema}.runs AS r ON r.instance_id = i.instance_id AND r.run_id = i.run_id
    WHERE i.visible_at <= %(now)s AND r.status = 'running' AND r.paused_at IS NULL
      AND (r.lease_token IS NULL OR r.lease_expires_at <= %(now)s)
      AND (r.ready_at IS NULL OR r.ready_at <= %(now)s)
    GROUP BY r.instance_id, r.run_id
) AS ready
GROUP BY queue

-- name: stats_activity_backlog
-- Activity tasks a worker could claim now, per queue, with since when.
SELECT queue, count(*), min(greatest(visible_at, coalesce(lease_expires_at, 0)))
FROM {schema}.activity_tasks AS t
WHERE visible_at <= %(now)s AND NOT cancel_requested
  AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
  AND NOT EXISTS (SELECT 1 FROM {schema}.runs AS pr
                WHERE pr.instance_id = t.instance_id AND pr.run_id = t.run_id
                  AND pr.paused_at IS NOT NULL)
GROUP BY queue

-- name: stats_limited_queues
-- Each limited queue with its attempts in flight and its starts in the rate window (and the
-- oldest of them): to count the ready tasks its limits hold back (docs/queues.md).
SELECT l.queue, l.max_concurrent, l.rate_count, l.rate_period, l.max_concurrent_per_key,
       (SELECT count(*) FROM {schema}.activity_tasks AS t
        WHERE t.queue = l.queue AND t.lease_token IS NOT NULL AND t.lease_expires_at > %(now)s),
       (SELECT count(*) FROM {schema}.queue_starts AS s
        WHERE s.queue = l.queue AND s.started_at > %(now)s::float8 - l.rate_period)
FROM {schema}.queue_limits AS l

-- name: stats_queue_keys
-- A per-key limited queue's concurrency keys: of its attempts in flight, and of its ready
-- tasks in claim order (as claim_keyed_activity_tasks reads them).
SELECT lease_token IS NOT NULL AND lease_expires_at > %(now)s AS running,
       convert_from(options, 'UTF8')::jsonb ->> 'concurrency_key'
FROM {schema}.activity_tasks AS t
WHERE queue = %(queue)s AND NOT cancel_requested
  AND ((lease_token IS NOT NULL AND lease_expires_at > %(now)s)
       OR (visible_at <= %(now)s
           AND NOT EXISTS (SELECT 1 FROM {schema}.runs AS pr
                           WHERE pr.instance_id = t.instance_id AND pr.run_id = t.run_id
                             AND pr.paused_at IS NOT NULL)))
ORDER BY visible_at, task_id

-- ---- terminate and delete ----------------------------------------------------------------

-- name: lock_run
-- After lock_instance: the latest run, locked (waits for a commit in progress on it).
SELECT run_id, status FROM {schema}.runs
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
FOR NO KEY UPDATE

-- name: open_children
SELECT instance_id, run_id FROM {schema}.runs
WHERE parent_instance_id = %(instance_id)s AND parent_run_id = %(run_id)s
  AND status = 'running'
ORDER BY ordinal
FOR NO KEY UPDATE

-- name: terminate_run
-- Close an open run as terminated, appending workflow_terminated to its history.
WITH closed AS (
    UPDATE {schema}.runs
    SET status = 'terminated', result = %(failure)s, closed_at = %(now)s, updated_at = %(now)s,
        history_length = history_length + 1, lease_token = NULL, lease_expires_at = NULL,
        ready_at = NULL
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
    RETURNING instance_id, run_id, history_length, parent_instance_id, parent_run_id,
              parent_command_id
)
SELECT history_length, parent_instance_id, parent_run_id, parent_command_id FROM closed

-- name: append_history
INSERT INTO {schema}.history (instance_id, run_id, seq, event)
SELECT %(instance_id)s, %(run_id)s, %(first_seq)s::integer + e.ord::integer - 1, e.event
FROM unnest(%(events)b::bytea[]) WITH ORDINALITY AS e(event, ord)

-- name: run_first_inbox_events
-- A run no task took yet: its workflow_started is among its first inbox events.
SELECT event FROM {schema}.inbox
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s ORDER BY id LIMIT 3

-- name: keep_closed
-- A run closed without a workflow task (terminate), kept for claim_closed_runs: a mark in its
-- inbox visible at 1e13 (_backend_events.CLOSED_MARK_AT), a time no claim or wake-up reaches
-- (they all look at open runs, and at times up to now).
INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event)
VALUES (%(instance_id)s, %(run_id)s, 1e13, %(mark)s)

-- name: claim_closed_runs
-- Each mark is taken once: locked (SKIP LOCKED: concurrent claims take disjoint marks) and
-- deleted in the statement that returns it.
WITH marks AS (
    SELECT i.id FROM {schema}.inbox AS i
    JOIN {schema}.runs AS r ON r.instance_id = i.instance_id AND r.run_id = i.run_id
    WHERE i.visible_at = 1e13 AND r.status <> 'running'
      AND r.queue = ANY(%(queues)b::text[])
    ORDER BY i.id
    LIMIT %(limit)s
    FOR UPDATE OF i SKIP LOCKED
), taken AS (
    DELETE FROM {schema}.inbox AS i USING marks AS m WHERE i.id = m.id
    RETURNING i.id, i.instance_id, i.run_id, i.event
)
SELECT t.instance_id, t.run_id, r.workflow_name, r.queue, r.status, r.closed_at, r.result,
       t.event
FROM taken AS t
JOIN {schema}.runs AS r ON r.instance_id = t.instance_id AND r.run_id = t.run_id
ORDER BY t.id

-- name: delete_run_inbox
DELETE FROM {schema}.inbox WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s

-- name: cancel_activity_tasks
-- Queued tasks (not leased, or lease expired) are deleted, running ones get cancel_requested.
-- activity_ids NULL means every task of the run.
WITH queued AS (
    DELETE FROM {schema}.activity_tasks
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
      AND (%(activity_ids)b::integer[] IS NULL OR activity_id = ANY(%(activity_ids)b::integer[]))
      AND (lease_expires_at IS NULL OR lease_expires_at <= %(now)s)
)
UPDATE {schema}.activity_tasks SET cancel_requested = true
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
  AND (%(activity_ids)b::integer[] IS NULL OR activity_id = ANY(%(activity_ids)b::integer[]))
  AND lease_expires_at > %(now)s

-- name: delete_instance
-- Cascades to history, inbox, activity tasks and variables.
WITH gone AS (
    DELETE FROM {schema}.runs WHERE instance_id = %(instance_id)s
)
DELETE FROM {schema}.instances WHERE instance_id = %(instance_id)s

-- ---- workflow tasks -------------------------------------------------------------------------

-- name: claim_workflow_tasks
-- Lease open runs with visible inbox events, highest claim rank first: the pending event's
-- visible_at moved 60 s earlier per level of its run's priority (docs/queues.md), oldest
-- first at equal priority. Walks the visible inbox in (rank, id) order (index) and stops
-- after max_tasks runs, so neither a backlog of claimable runs nor sleeping runs (future
-- timers) make a claim slower: only the events of runs it cannot take (leased, in back-off, other queues) are stepped over. A run
-- is met at its first visible event (the NOT EXISTS) and locked there, one by one (the
-- lateral subquery); SKIP LOCKED lets concurrent workers take disjoint batches without
-- waiting for each other. Runs are looked up by key only, whatever the statistics say: the
-- queue test is written so that no index on queue can serve it (scanning a queue's runs per
-- inbox event is what a planner with stale statistics would otherwise pick), and the update
-- goes straight to the row versions locked (by ctid: no scan of runs, whatever the plan; a
-- version that changed under the lock is not visible to the update and simply not claimed).
-- A run another worker has cached (sticky_worker) is left to that worker until its first
-- pending event has been visible for sticky_wait seconds. %(worker)s is '' for no worker.
WITH candidates AS (
    SELECT r.ctid AS row_version, r.instance_id, r.run_id, i.id AS first_id, i.visible_at,
           r.ready_at
    FROM {schema}.inbox AS i
    CROSS JOIN LATERAL (
        SELECT r.ctid, r.instance_id, r.run_id, r.ready_at FROM {schema}.runs AS r
        WHERE r.instance_id = i.instance_id AND r.run_id = i.run_id
          AND r.status = 'running' AND r.paused_at IS NULL
          AND ARRAY[r.queue] <@ %(queues)b::text[]
          AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= %(now)s)
          AND (r.ready_at IS NULL OR r.ready_at <= %(now)s)
          AND (r.sticky_worker IS NULL OR r.sticky_worker = %(worker)s
               OR i.visible_at + %(sticky_wait)s::float8 <= %(now)s)
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS r
    WHERE i.visible_at <= %(now)s
      -- The walk's bound (index inbox_by_rank): implied by the line above, priorities being
      -- at least 0.
      AND i.visible_at - i.priority * 60 <= %(now)s
      AND NOT EXISTS (
          SELECT 1 FROM {schema}.inbox AS earlier
          WHERE earlier.instance_id = i.instance_id AND earlier.run_id = i.run_id
            AND earlier.id < i.id AND earlier.visible_at <= %(now)s)
    ORDER BY i.visible_at - i.priority * 60, i.id
    LIMIT %(max_tasks)s
)
UPDATE {schema}.runs AS r
SET lease_token = replace(gen_random_uuid()::text, '-', ''),
    lease_expires_at = %(now)s::float8 + %(lease_seconds)s::float8,
    ready_at = NULL
FROM candidates AS c
WHERE r.ctid = ANY(ARRAY(SELECT row_version FROM candidates))
  AND r.instance_id = c.instance_id AND r.run_id = c.run_id
RETURNING r.instance_id, r.run_id, r.workflow_name, r.queue, r.lease_token,
          r.history_length, r.failed_attempts, c.visible_at, c.first_id, c.ready_at

-- name: visible_inbox
SELECT i.instance_id, i.run_id, i.id, i.event, i.visible_at
FROM {schema}.inbox AS i
JOIN unnest(%(instance_ids)b::text[], %(run_ids)b::text[]) AS c(instance_id, run_id)
  ON i.instance_id = c.instance_id AND i.run_id = c.run_id
WHERE i.visible_at <= %(now)s
ORDER BY i.id

-- name: lock_leased_run
-- The fence of every workflow-task write: no row means the lease is lost.
SELECT history_length, queue, parent_instance_id, parent_run_id, parent_command_id
FROM {schema}.runs
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
  AND lease_token = %(lease_token)s
FOR NO KEY UPDATE

-- name: delete_inbox_events
DELETE FROM {schema}.inbox
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND id = ANY(%(ids)b::bigint[])

-- name: insert_activity_tasks
INSERT INTO {schema}.activity_tasks (
    instance_id, run_id, activity_id, name, queue, input, options, deadline, scheduled_at,
    visible_at, priority)
SELECT %(instance_id)s, %(run_id)s, a.activity_id, a.name, a.queue, a.input, a.options,
       a.deadline, %(now)s, %(now)s, a.priority
FROM unnest(%(activity_ids)b::integer[], %(names)b::bytea[], %(queues)b::text[],
            %(inputs)b::bytea[], %(options)b::bytea[], %(deadlines)b::float8[],
            %(priorities)b::integer[])
     WITH ORDINALITY AS a(activity_id, name, queue, input, options, deadline, priority, ord)
ORDER BY a.ord

-- name: insert_inbox_events
-- Timers (timer_id set, visible at the fire time) and other events for one run.
INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, timer_id, event)
SELECT %(instance_id)s, %(run_id)s, t.fire_at, t.timer_id, t.event
FROM unnest(%(timer_ids)b::integer[], %(fire_ats)b::float8[], %(events)b::bytea[])
     WITH ORDINALITY AS t(timer_id, fire_at, event, ord)
ORDER BY t.ord

-- name: cancel_timers
DELETE FROM {schema}.inbox
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
  AND timer_id = ANY(%(timer_ids)b::integer[])

-- name: upsert_vars
INSERT INTO {schema}.vars (instance_id, run_id, name, value)
SELECT %(instance_id)s, %(run_id)s, v.name, v.value
FROM unnest(%(names)b::bytea[], %(values)b::bytea[]) AS v(name, value)
ON CONFLICT (instance_id, run_id, name) DO UPDATE SET value = EXCLUDED.value

-- name: finish_workflow_task
UPDATE {schema}.runs
SET history_length = history_length + %(new_events)s, lease_token = NULL,
    lease_expires_at = NULL, ready_at = NULL, blocked_reason = NULL, failed_attempts = 0,
    updated_at = %(now)s, sticky_worker = %(sticky_worker)s
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s

-- name: close_run
UPDATE {schema}.runs
SET status = %(status)s, result = %(result)s, closed_at = %(now)s, updated_at = %(now)s,
    next_run_id = %(next_run_id)s
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s

-- name: commit_workflow_task
-- A whole workflow-task commit in one statement, for the common shapes (PostgresBackend.
-- _commit_in_one_statement says which): new history, consumed inbox events, new activities,
-- timers and variables, or closing a run without a parent (its inbox and queued activities
-- go, running ones are asked to cancel). Fenced like lock_leased_run, and by the history
-- length the task was claimed with. No row: the lease is lost. ok = false: the commit closes
-- a run that has a parent; nothing was written (the caller commits the general way).
-- Notifications are passed in and sent only when the fence holds. Eager dispatch: an
-- activity with an eager token is leased to the committing worker (attempt 1) unless its
-- queue has limits or the run is paused; eager_task_ids / eager_activity_ids say which were.
WITH fence AS (
    SELECT instance_id, run_id, (parent_instance_id IS NULL OR NOT %(closing)s) AS ok,
           paused_at IS NOT NULL AS paused
    FROM {schema}.runs
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
      AND lease_token = %(lease_token)s AND history_length = %(history_length)s
    FOR NO KEY UPDATE
), target AS (
    SELECT instance_id, run_id, paused FROM fence WHERE ok
), appended AS (
    INSERT INTO {schema}.history (instance_id, run_id, seq, event)
    SELECT t.instance_id, t.run_id, %(history_length)s::integer + e.ord::integer, e.event
    FROM target AS t, unnest(%(events)b::bytea[]) WITH ORDINALITY AS e(event, ord)
), consumed AS (
    DELETE FROM {schema}.inbox AS i
    USING target AS t
    WHERE i.instance_id = t.instance_id AND i.run_id = t.run_id
      AND (%(closing)s OR i.id = ANY(%(consumed)b::bigint[]))
), activities AS (
    INSERT INTO {schema}.activity_tasks (
        instance_id, run_id, activity_id, name, queue, input, options, deadline, scheduled_at,
        visible_at, attempt, lease_token, lease_expires_at, priority)
    SELECT t.instance_id, t.run_id, a.activity_id, a.name, a.queue, a.input, a.options,
           a.deadline, %(now)s, %(now)s, CASE WHEN e.leased THEN 1 ELSE 0 END,
           CASE WHEN e.leased THEN a.eager_token END,
           CASE WHEN e.leased THEN %(eager_expires)s::float8 END, a.priority
    FROM target AS t,
         unnest(%(activity_ids)b::integer[], %(names)b::bytea[], %(queues)b::text[],
                %(inputs)b::bytea[], %(options)b::bytea[], %(deadlines)b::float8[],
                %(eager_tokens)b::text[], %(priorities)b::integer[])
         WITH ORDINALITY AS a(activity_id, name, queue, input, options, deadline, eager_token,
                              priority, ord),
         LATERAL (SELECT a.eager_token IS NOT NULL AND NOT t.paused
                         AND NOT EXISTS (SELECT 1 FROM {schema}.queue_limits AS l
                                         WHERE l.queue = a.queue) AS leased) AS e
    ORDER BY a.ord
    RETURNING task_id, activity_id, lease_token IS NOT NULL AS leased
), timers AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, timer_id, event)
    SELECT t.instance_id, t.run_id, m.fire_at, m.timer_id, m.event
    FROM target AS t,
         unnest(%(timer_ids)b::integer[], %(fire_ats)b::float8[], %(timer_events)b::bytea[])
         WITH ORDINALITY AS m(timer_id, fire_at, event, ord)
    ORDER BY m.ord
), variables AS (
    INSERT INTO {schema}.vars (instance_id, run_id, name, value)
    SELECT t.instance_id, t.run_id, v.name, v.value
    FROM target AS t, unnest(%(var_names)b::bytea[], %(var_values)b::bytea[]) AS v(name, value)
    ON CONFLICT (instance_id, run_id, name) DO UPDATE SET value = EXCLUDED.value
), dropped_activities AS (
    DELETE FROM {schema}.activity_tasks AS a
    USING target AS t
    WHERE %(closing)s AND a.instance_id = t.instance_id AND a.run_id = t.run_id
      AND (a.lease_expires_at IS NULL OR a.lease_expires_at <= %(now)s)
), cancelled_activities AS (
    UPDATE {schema}.activity_tasks AS a SET cancel_requested = true
    FROM target AS t
    WHERE %(closing)s AND a.instance_id = t.instance_id AND a.run_id = t.run_id
      AND a.lease_expires_at > %(now)s
), finished AS (
    UPDATE {schema}.runs AS r
    SET history_length = r.history_length + cardinality(%(events)b::bytea[]),
        lease_token = NULL, lease_expires_at = NULL, ready_at = NULL, blocked_reason = NULL,
        failed_attempts = 0, updated_at = %(now)s, sticky_worker = %(sticky_worker)s,
        status = coalesce(%(close_status)s::text, r.status),
        result = CASE WHEN %(closing)s THEN %(result)s::bytea ELSE r.result END,
        closed_at = CASE WHEN %(closing)s THEN %(now)s::float8 ELSE r.closed_at END
    FROM target AS t
    WHERE r.instance_id = t.instance_id AND r.run_id = t.run_id
), notified AS (
    SELECT pg_notify(n.channel, n.payload)
    FROM target, unnest(%(channels)b::text[], %(payloads)b::text[]) AS n(channel, payload)
), released AS (
    -- The released run is claimable now only if events arrived during the task (or it set
    -- timers): only then are workflow workers told (release_channel), else they would
    -- only claim nothing. (An event committed between this statement's snapshot and its
    -- lock sent its own notification; a poller then sees the run at its next poll.)
    SELECT pg_notify(%(release_channel)s, %(release_payload)s)
    FROM target AS t
    WHERE NOT %(closing)s
      AND (cardinality(%(timer_ids)b::integer[]) > 0
           OR EXISTS (SELECT 1 FROM {schema}.inbox AS i
                      WHERE i.instance_id = t.instance_id AND i.run_id = t.run_id
                        AND NOT (i.id = ANY(%(consumed)b::bigint[]))))
)
SELECT ok, (SELECT count(*) FROM notified) AS notifications,
       ARRAY(SELECT task_id FROM activities WHERE leased ORDER BY activity_id)
           AS eager_task_ids,
       ARRAY(SELECT activity_id FROM activities WHERE leased ORDER BY activity_id)
           AS eager_activity_ids,
       EXISTS (SELECT 1 FROM released) AS released
FROM fence

-- name: fail_workflow_task
WITH failed AS (
    UPDATE {schema}.runs
    SET lease_token = NULL, lease_expires_at = NULL, blocked_reason = %(reason)s,
        sticky_worker = NULL, ready_at = %(retry_at)s, failed_attempts = failed_attempts + 1, updated_at = %(now)s
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
      AND lease_token = %(lease_token)s
    RETURNING queue
)
SELECT queue, pg_notify(%(channel)s, queue) FROM failed

-- name: release_workflow_task
WITH released AS (
    UPDATE {schema}.runs SET lease_token = NULL, lease_expires_at = NULL, sticky_worker = NULL
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
      AND lease_token = %(lease_token)s
    RETURNING queue
)
SELECT queue, pg_notify(%(channel)s, queue) FROM released

-- name: release_sticky
-- A worker shutting down: its cached runs go to any worker at once (found through the index
-- of open runs by queue, never a scan of closed ones).
WITH released AS (
    UPDATE {schema}.runs SET sticky_worker = NULL
    WHERE status = 'running' AND queue = ANY(%(queues)b::text[])
      AND sticky_worker = %(worker)s
    RETURNING queue
)
SELECT queue, pg_notify(%(channel)s, queue) FROM (SELECT DISTINCT queue FROM released) AS q

-- name: extend_workflow_lease
UPDATE {schema}.runs
SET lease_expires_at = %(now)s::float8 + %(lease_seconds)s::float8
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s AND status = 'running'
  AND lease_token = %(lease_token)s
RETURNING 1

-- name: next_workflow_work
-- When workflow work on these queues becomes claimable by %(worker)s: <= now means now, NULL
-- means no work is pending. Runs that are neither leased nor delayed are found from the
-- earliest inbox event (index on visible_at): those left to no worker or to this one, then
-- those left to another worker (claimable sticky_wait later); the few delayed runs are
-- checked one by one (index). A run under a lease that has not expired yet is not counted:
-- its worker's commit notifies, and should that worker be gone, the expiry is noticed at the
-- next poll (Worker poll_interval), since leases are kept out of every index (migration 4).
SELECT least(
    (SELECT i.visible_at
     FROM {schema}.inbox AS i
     JOIN {schema}.runs AS r ON r.instance_id = i.instance_id AND r.run_id = i.run_id
     WHERE r.status = 'running' AND r.queue = ANY(%(queues)b::text[]) AND r.paused_at IS NULL
       AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= %(now)s) AND r.ready_at IS NULL
       AND (r.sticky_worker IS NULL OR r.sticky_worker = %(worker)s)
     ORDER BY i.visible_at
     LIMIT 1),
    (SELECT i.visible_at + %(sticky_wait)s::float8
     FROM {schema}.inbox AS i
     JOIN {schema}.runs AS r ON r.instance_id = i.instance_id AND r.run_id = i.run_id
     WHERE r.status = 'running' AND r.queue = ANY(%(queues)b::text[]) AND r.paused_at IS NULL
       AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= %(now)s) AND r.ready_at IS NULL
       AND r.sticky_worker <> %(worker)s
     ORDER BY i.visible_at
     LIMIT 1),
    (SELECT min(greatest(pending.first_visible, r.ready_at,
                         coalesce(r.lease_expires_at, '-infinity'::float8),
                         CASE WHEN r.sticky_worker <> %(worker)s
                              THEN pending.first_visible + %(sticky_wait)s::float8
                              ELSE '-infinity'::float8 END))
     FROM {schema}.runs AS r
     CROSS JOIN LATERAL (
         SELECT min(i.visible_at) AS first_visible FROM {schema}.inbox AS i
         WHERE i.instance_id = r.instance_id AND i.run_id = r.run_id
     ) AS pending
     WHERE r.status = 'running' AND r.ready_at IS NOT NULL AND r.paused_at IS NULL
       AND r.queue = ANY(%(queues)b::text[]))
)

-- ---- activity tasks -----------------------------------------------------------------------

-- name: claim_activity_tasks
-- One statement (no transaction block): tasks cancelled while running whose worker is gone
-- (lease expired) are deleted, never run again; ready tasks are leased, highest claim rank
-- first (visible_at moved 60 s earlier per priority level: docs/queues.md), then task id.
-- Per queue, never-leased tasks come from a walk of activity_tasks_ready_by_rank in that
-- order, stopped after max_tasks (no sort of a backlog, however long), and tasks whose lease
-- expired (their worker died: few) from the index of leases; both are locked SKIP LOCKED and
-- the best max_tasks of them leased (the others are unlocked when the statement ends).
WITH purged AS (
    DELETE FROM {schema}.activity_tasks
    WHERE queue = ANY(%(queues)b::text[]) AND cancel_requested
      AND lease_expires_at <= %(now)s
), ready AS (
    SELECT c.task_id, c.rank, c.ready_at
    FROM unnest(%(queues)b::text[]) AS q(queue)
    CROSS JOIN LATERAL (
        SELECT t.task_id, t.visible_at - t.priority * 60 AS rank, t.visible_at AS ready_at
        FROM {schema}.activity_tasks AS t
        WHERE t.queue = q.queue AND t.lease_expires_at IS NULL
          AND t.visible_at - t.priority * 60 <= %(now)s  -- the walk's bound (priority >= 0)
          AND t.visible_at <= %(now)s AND NOT t.cancel_requested
          -- Not paused: its run looked up by key (a scalar subquery), whatever the statistics
          -- say (an anti-join may scan every run).
          AND (SELECT pr.paused_at FROM {schema}.runs AS pr
               WHERE pr.instance_id = t.instance_id AND pr.run_id = t.run_id) IS NULL
        ORDER BY t.visible_at - t.priority * 60, t.task_id
        LIMIT %(max_tasks)s
        FOR UPDATE OF t SKIP LOCKED
    ) AS c
    -- Queues with limits are claimed by claim_limited_activity_tasks, under their lock (tested
    -- once per queue: a test per task made the planner sort the whole backlog).
    WHERE NOT EXISTS (SELECT 1 FROM {schema}.queue_limits AS l WHERE l.queue = q.queue)
), expired AS (
    -- ready_at: claimable since a vanished worker's lease ran out (or since visible).
    SELECT t.task_id, t.visible_at - t.priority * 60 AS rank,
           greatest(t.visible_at, t.lease_expires_at) AS ready_at
    FROM {schema}.activity_tasks AS t
    WHERE t.queue = ANY(%(queues)b::text[]) AND t.lease_expires_at <= %(now)s
      AND t.visible_at <= %(now)s AND NOT t.cancel_requested
      -- Not paused: its run looked up by key (a scalar subquery), whatever the statistics
      -- say (an anti-join may scan every run).
      AND (SELECT pr.paused_at FROM {schema}.runs AS pr
           WHERE pr.instance_id = t.instance_id AND pr.run_id = t.run_id) IS NULL
      AND NOT EXISTS (SELECT 1 FROM {schema}.queue_limits AS l WHERE l.queue = t.queue)
    ORDER BY t.visible_at - t.priority * 60, t.task_id
    LIMIT %(max_tasks)s
    FOR UPDATE OF t SKIP LOCKED
), candidates AS (
    SELECT task_id, ready_at FROM (SELECT * FROM ready UNION ALL SELECT * FROM expired) AS c
    ORDER BY rank, task_id
    LIMIT %(max_tasks)s
)
UPDATE {schema}.activity_tasks AS t
SET attempt = t.attempt + 1, lease_token = replace(gen_random_uuid()::text, '-', ''),
    lease_expires_at = %(now)s::float8 + %(lease_seconds)s::float8
FROM candidates AS c
WHERE t.task_id = c.task_id
RETURNING t.task_id, t.instance_id, t.run_id, t.activity_id, t.name, t.queue, t.input,
          t.options, t.attempt, t.lease_token, t.scheduled_at, t.deadline,
          t.heartbeat_details, t.visible_at,
          (SELECT r.workflow_name FROM {schema}.runs AS r
           WHERE r.instance_id = t.instance_id AND r.run_id = t.run_id),
          c.ready_at

-- ---- queue limits (docs/queues.md) ------------------------------------------------------------

-- name: limited_queues
SELECT queue FROM {schema}.queue_limits WHERE queue = ANY(%(queues)b::text[])

-- name: lock_queue_limits
-- Concurrent claimers of a limited queue wait here for each other (in queue order: no
-- deadlock), so each counts the attempts the one before it claimed.
SELECT queue, max_concurrent, rate_count, rate_period, max_concurrent_per_key
FROM {schema}.queue_limits
WHERE queue = ANY(%(queues)b::text[]) ORDER BY queue FOR UPDATE

-- name: queue_usage
-- Run after lock_queue_limits, in its own statement: a new snapshot that sees the claims
-- committed by whoever held the lock before. Old starts are pruned first.
WITH pruned AS (
    DELETE FROM {schema}.queue_starts
    WHERE queue = %(queue)s AND started_at <= %(now)s::float8 - %(period)s::float8
)
SELECT (SELECT count(*) FROM {schema}.activity_tasks
        WHERE queue = %(queue)s AND lease_token IS NOT NULL AND lease_expires_at > %(now)s),
       (SELECT count(*) FROM {schema}.queue_starts
        WHERE queue = %(queue)s AND started_at > %(now)s::float8 - %(period)s::float8)

-- name: claim_limited_activity_tasks
-- As claim_activity_tasks, for one limited queue (under its lock): at most max_tasks, the
-- remaining budget.
WITH ready AS (
    SELECT t.task_id, t.visible_at - t.priority * 60 AS rank, t.visible_at AS ready_at
    FROM {schema}.activity_tasks AS t
    WHERE t.queue = %(queue)s AND t.lease_expires_at IS NULL
      AND t.visible_at - t.priority * 60 <= %(now)s  -- the walk's bound (priority >= 0)
      AND t.visible_at <= %(now)s AND NOT t.cancel_requested
      -- Not paused: its run looked up by key (a scalar subquery), whatever the statistics
      -- say (an anti-join may scan every run).
      AND (SELECT pr.paused_at FROM {schema}.runs AS pr
           WHERE pr.instance_id = t.instance_id AND pr.run_id = t.run_id) IS NULL
    ORDER BY t.visible_at - t.priority * 60, t.task_id
    LIMIT %(max_tasks)s
    FOR UPDATE OF t SKIP LOCKED
), expired AS (
    -- ready_at: claimable since a vanished worker's lease ran out (or since visible).
    SELECT t.task_id, t.visible_at - t.priority * 60 AS rank,
           greatest(t.visible_at, t.lease_expires_at) AS ready_at
    FROM {schema}.activity_tasks AS t
    WHERE t.queue = %(queue)s AND t.lease_expires_at <= %(now)s
      AND t.visible_at <= %(now)s AND NOT t.cancel_requested
      -- Not paused: its run looked up by key (a scalar subquery), whatever the statistics
      -- say (an anti-join may scan every run).
      AND (SELECT pr.paused_at FROM {schema}.runs AS pr
           WHERE pr.instance_id = t.instance_id AND pr.run_id = t.run_id) IS NULL
    ORDER BY t.visible_at - t.priority * 60, t.task_id
    LIMIT %(max_tasks)s
    FOR UPDATE OF t SKIP LOCKED
), candidates AS (
    SELECT task_id, ready_at FROM (SELECT * FROM ready UNION ALL SELECT * FROM expired) AS c
    ORDER BY rank, task_id
    LIMIT %(max_tasks)s
)
UPDATE {schema}.activity_tasks AS t
SET attempt = t.attempt + 1, lease_token = replace(gen_random_uuid()::text, '-', ''),
    lease_expires_at = %(now)s::float8 + %(lease_seconds)s::float8
FROM candidates AS c
WHERE t.task_id = c.task_id
RETURNING t.task_id, t.instance_id, t.run_id, t.activity_id, t.name, t.queue, t.input,
          t.options, t.attempt, t.lease_token, t.scheduled_at, t.deadline,
          t.heartbeat_details, t.visible_at,
          (SELECT r.workflow_name FROM {schema}.runs AS r
           WHERE r.instance_id = t.instance_id AND r.run_id = t.run_id),
          c.ready_at

-- name: record_queue_starts
INSERT INTO {schema}.queue_starts (queue, started_at)
SELECT %(queue)s, %(now)s FROM generate_series(1, %(count)s)

-- name: get_queue_limits
SELECT queue, max_concurrent, rate_count, rate_period, max_concurrent_per_key
FROM {schema}.queue_limits WHERE queue = %(queue)s

-- name: set_queue_limits
INSERT INTO {schema}.queue_limits (
    queue, max_concurrent, rate_count, rate_period, max_concurrent_per_key)
VALUES (%(queue)s, %(max_concurrent)s, %(rate_count)s, %(rate_period)s, %(per_key)s)
ON CONFLICT (queue) DO UPDATE SET max_concurrent = excluded.max_concurrent,
    rate_count = excluded.rate_count, rate_period = excluded.rate_period,
    max_concurrent_per_key = excluded.max_concurrent_per_key

-- name: claim_keyed_activity_tasks
-- A queue with max_concurrent_per_key: the k-th ready task of a concurrency key (in claim
-- order: rank, then task id) may start when the key's attempts in flight plus k stay within
-- the limit. The key is the "concurrency_key" member of the task's options (the only one a
-- backend reads).
WITH keyed AS (
    SELECT task_id, visible_at - priority * 60 AS rank,
           convert_from(options, 'UTF8')::jsonb ->> 'concurrency_key' AS k,
           lease_token IS NOT NULL AND lease_expires_at > %(now)s AS running
    FROM {schema}.activity_tasks
    WHERE queue = %(queue)s
), in_flight AS (
    SELECT k, count(*) AS n FROM keyed WHERE running AND k IS NOT NULL GROUP BY k
), ranked AS (
    SELECT r.task_id, r.rank, r.k,
           row_number() OVER (PARTITION BY r.k ORDER BY r.rank, r.task_id) AS nth
    FROM keyed AS r JOIN {schema}.activity_tasks AS a ON a.task_id = r.task_id
    WHERE NOT r.running AND a.visible_at <= %(now)s AND NOT a.cancel_requested
), candidates AS (
    SELECT a.task_id, greatest(a.visible_at, a.lease_expires_at) AS ready_at
    FROM {schema}.activity_tasks AS a
    JOIN ranked AS r ON r.task_id = a.task_id
    LEFT JOIN in_flight AS f ON f.k = r.k
    WHERE r.k IS NULL OR r.nth + coalesce(f.n, 0) <= %(per_key)s
    ORDER BY r.rank, r.task_id
    LIMIT %(max_tasks)s
    FOR UPDATE OF a SKIP LOCKED
)
UPDATE {schema}.activity_tasks AS t
SET attempt = t.attempt + 1, lease_token = replace(gen_random_uuid()::text, '-', ''),
    lease_expires_at = %(now)s::float8 + %(lease_seconds)s::float8
FROM candidates AS c
WHERE t.task_id = c.task_id
RETURNING t.task_id, t.instance_id, t.run_id, t.activity_id, t.name, t.queue, t.input,
          t.options, t.attempt, t.lease_token, t.scheduled_at, t.deadline,
          t.heartbeat_details, t.visible_at,
          (SELECT r.workflow_name FROM {schema}.runs AS r
           WHERE r.instance_id = t.instance_id AND r.run_id = t.run_id),
          c.ready_at

-- name: delete_queue_limits
WITH starts AS (DELETE FROM {schema}.queue_starts WHERE queue = %(queue)s)
DELETE FROM {schema}.queue_limits WHERE queue = %(queue)s

-- name: heartbeat_activity
-- A lease tick without details (NULL) keeps the stored ones.
UPDATE {schema}.activity_tasks
SET heartbeat_details = coalesce(%(details)s::bytea, heartbeat_details),
    lease_expires_at = %(now)s::float8 + %(lease_seconds)s::float8
WHERE task_id = %(task_id)s AND lease_token = %(lease_token)s
RETURNING cancel_requested

-- name: complete_activity
-- Delete the task and deliver its result to the run if open, in one statement. Returns one
-- row: deleted = false means the lease was lost (nothing written).
WITH done AS (
    DELETE FROM {schema}.activity_tasks
    WHERE task_id = %(task_id)s AND lease_token = %(lease_token)s
    RETURNING instance_id, run_id
), target AS (
    -- Looked up by key (OFFSET 0 keeps the subquery per row), whatever the planner thinks of
    -- the statistics it cached the plan with.
    SELECT r.instance_id, r.run_id, r.queue
    FROM done AS d
    JOIN LATERAL (
        SELECT r.instance_id, r.run_id, r.queue FROM {schema}.runs AS r
        WHERE r.instance_id = d.instance_id AND r.run_id = d.run_id AND r.status = 'running'
        OFFSET 0
    ) AS r ON true
), delivered AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event)
    SELECT instance_id, run_id, %(now)s, %(event)s FROM target
), notified AS (
    SELECT pg_notify(%(channel)s, queue) FROM target
)
SELECT EXISTS (SELECT 1 FROM done) AS deleted,
       (SELECT queue FROM target) AS queue,
       (SELECT count(*) FROM notified) AS notifications

-- name: complete_activity_claiming
-- complete_activity, continuing locally: the run is also leased (lease_token) to the worker
-- that has it cached (sticky_worker = worker), when it is open, not paused, not in back-off
-- and not leased. Then no notification is sent (nobody else could claim it) and the row
-- carries the task: the run's visible inbox events, this completion included.
WITH done AS (
    DELETE FROM {schema}.activity_tasks
    WHERE task_id = %(task_id)s AND lease_token = %(lease_token)s
    RETURNING instance_id, run_id
), target AS (
    SELECT r.instance_id, r.run_id, r.queue
    FROM done AS d
    JOIN LATERAL (
        SELECT r.instance_id, r.run_id, r.queue FROM {schema}.runs AS r
        WHERE r.instance_id = d.instance_id AND r.run_id = d.run_id AND r.status = 'running'
        OFFSET 0
    ) AS r ON true
), delivered AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event)
    SELECT instance_id, run_id, %(now)s, %(event)s FROM target
    RETURNING id, event
), claimed AS (
    UPDATE {schema}.runs AS r
    SET lease_token = %(new_lease_token)s,
        lease_expires_at = %(now)s::float8 + %(lease_seconds)s::float8, ready_at = NULL
    FROM target AS t
    WHERE r.instance_id = t.instance_id AND r.run_id = t.run_id AND r.status = 'running'
      AND r.sticky_worker = %(worker)s AND r.paused_at IS NULL
      AND (r.ready_at IS NULL OR r.ready_at <= %(now)s)
      AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= %(now)s)
    RETURNING r.instance_id, r.run_id, r.workflow_name, r.history_length, r.failed_attempts
), visible AS (
    SELECT i.id, i.event FROM {schema}.inbox AS i, claimed AS c
    WHERE i.instance_id = c.instance_id AND i.run_id = c.run_id AND i.visible_at <= %(now)s
    UNION ALL
    SELECT id, event FROM delivered WHERE EXISTS (SELECT 1 FROM claimed)
), notified AS (
    SELECT pg_notify(%(channel)s, queue) FROM target WHERE NOT EXISTS (SELECT 1 FROM claimed)
)
SELECT EXISTS (SELECT 1 FROM done) AS deleted,
       (SELECT queue FROM target) AS queue,
       (SELECT count(*) FROM notified) AS notifications,
       c.workflow_name, c.history_length, c.failed_attempts,
       ARRAY(SELECT id FROM visible ORDER BY id) AS inbox_ids,
       ARRAY(SELECT event FROM visible ORDER BY id) AS inbox_events
FROM (SELECT 1) AS one LEFT JOIN claimed AS c ON true

-- name: retry_activity
WITH released AS (
    UPDATE {schema}.activity_tasks
    SET lease_token = NULL, lease_expires_at = NULL, visible_at = %(visible_at)s,
        last_failure = coalesce(%(failure)s::bytea, last_failure)
    WHERE task_id = %(task_id)s AND lease_token = %(lease_token)s
    RETURNING queue
)
SELECT queue, pg_notify(%(channel)s, queue) FROM released

-- name: activity_states
SELECT activity_id, name, attempt, scheduled_at, visible_at,
       coalesce(lease_expires_at > %(now)s, false), cancel_requested, heartbeat_details,
       last_failure
FROM {schema}.activity_tasks
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
ORDER BY activity_id

-- name: next_activity_work
-- When activity work on these queues becomes claimable (see next_workflow_work).
SELECT least(
    (SELECT min(visible_at) FROM {schema}.activity_tasks AS t
     WHERE queue = ANY(%(queues)b::text[]) AND lease_expires_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM {schema}.runs AS pr
                WHERE pr.instance_id = t.instance_id AND pr.run_id = t.run_id
                  AND pr.paused_at IS NOT NULL)),
    (SELECT min(greatest(visible_at, lease_expires_at)) FROM {schema}.activity_tasks AS t
     WHERE queue = ANY(%(queues)b::text[]) AND lease_expires_at IS NOT NULL
       AND NOT cancel_requested
       AND NOT EXISTS (SELECT 1 FROM {schema}.runs AS pr
                WHERE pr.instance_id = t.instance_id AND pr.run_id = t.run_id
                  AND pr.paused_at IS NOT NULL))
)

-- name: next_visible_time
-- The earliest time after now at which a timer, delayed start, back-off or activity retry
-- becomes visible, on any queue (for time-skipping test drivers).
SELECT least(
    (SELECT i.visible_at
     FROM {schema}.inbox AS i
     JOIN {schema}.runs AS r ON r.instance_id = i.instance_id AND r.run_id = i.run_id
     WHERE r.status = 'running' AND i.visible_at > %(now)s
     ORDER BY i.visible_at
     LIMIT 1),
    (SELECT min(ready_at) FROM {schema}.runs
     WHERE status = 'running' AND ready_at > %(now)s),
    (SELECT min(visible_at) FROM {schema}.activity_tasks
     WHERE lease_expires_at IS NULL AND visible_at > %(now)s),
    -- leases on pending work that run out (a worker that vanished holding them)
    (SELECT min(r.lease_expires_at) FROM {schema}.runs AS r
     WHERE r.status = 'running' AND r.lease_expires_at > %(now)s
       AND EXISTS (SELECT 1 FROM {schema}.inbox AS i
                   WHERE i.instance_id = r.instance_id AND i.run_id = r.run_id)),
    (SELECT min(lease_expires_at) FROM {schema}.activity_tasks
     WHERE lease_expires_at > %(now)s),
    -- due schedules too: the driver must not move the clock past a fire not yet taken
    (SELECT min(next_fire_at) FROM {schema}.schedules)
)

-- ---- schedules (ostinato._schedules; every write is a compare-and-set on version) ---------

-- name: create_schedule
INSERT INTO {schema}.schedules
    (schedule_id, workflow_name, queue, args, spec, state, paused, next_fire_at, version,
     created_at, updated_at)
VALUES (%(schedule_id)s, %(workflow_name)s, %(queue)s, %(args)s, %(spec)s, %(state)s,
        %(paused)s, %(next_fire_at)s, 1, %(now)s, %(now)s)
ON CONFLICT (schedule_id) DO NOTHING
RETURNING 1

-- name: get_schedule
SELECT schedule_id, workflow_name, queue, args, spec, state, paused, next_fire_at, version,
       created_at, updated_at
FROM {schema}.schedules WHERE schedule_id = %(schedule_id)s

-- name: list_schedules
SELECT schedule_id, workflow_name, queue, args, spec, state, paused, next_fire_at, version,
       created_at, updated_at
FROM {schema}.schedules WHERE schedule_id > %(after)s
ORDER BY schedule_id LIMIT %(limit)s

-- name: update_schedule
UPDATE {schema}.schedules
SET queue = %(queue)s, args = %(args)s, spec = %(spec)s, state = %(state)s,
    paused = %(paused)s, next_fire_at = %(next_fire_at)s, version = version + 1,
    updated_at = %(now)s
WHERE schedule_id = %(schedule_id)s AND version = %(expected_version)s
RETURNING 1

-- name: delete_schedule
DELETE FROM {schema}.schedules WHERE schedule_id = %(schedule_id)s RETURNING 1

-- name: due_schedules
SELECT schedule_id, workflow_name, queue, args, spec, state, paused, next_fire_at, version,
       created_at, updated_at
FROM {schema}.schedules
WHERE next_fire_at <= %(now)s AND queue = ANY(%(queues)s)
ORDER BY next_fire_at, schedule_id LIMIT %(limit)s

-- name: next_schedule_fire
SELECT min(next_fire_at) FROM {schema}.schedules WHERE queue = ANY(%(queues)s)

-- ---- retention (postgres/_retention.py) -----------------------------------------------------

-- name: delete_closed_instances
-- At most limit instances whose latest run has one of the statuses and closed before
-- closed_before, oldest first, deleted with everything of theirs (runs cascade to history,
-- inbox, activity tasks and variables). Instances another transaction has locked (a run
-- being created) are skipped, and the status is checked again under the lock.
WITH doomed AS (
    SELECT i.instance_id
    FROM {schema}.runs AS r
    JOIN {schema}.instances AS i
      ON i.instance_id = r.instance_id AND i.latest_run_id = r.run_id
    WHERE r.is_latest AND r.closed_at IS NOT NULL AND r.closed_at < %(closed_before)s
      AND r.status = ANY(%(statuses)s::text[])
    ORDER BY r.closed_at
    LIMIT %(limit)s
    FOR UPDATE OF i SKIP LOCKED
), gone AS (
    DELETE FROM {schema}.runs WHERE instance_id IN (SELECT instance_id FROM doomed)
)
DELETE FROM {schema}.instances WHERE instance_id IN (SELECT instance_id FROM doomed)
RETURNING instance_id

-- name: redact_lock_run
SELECT status FROM {schema}.runs
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s FOR UPDATE

-- name: redact_history_seqs
SELECT seq FROM {schema}.history
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s ORDER BY seq

-- name: redact_history
-- Replaces every event of the run (seqs[k] gets events[k]) and drops its payload rows.
WITH events AS (
    UPDATE {schema}.history AS h SET event = x.event
    FROM unnest(%(seqs)b::integer[], %(events)b::bytea[]) AS x(seq, event)
    WHERE h.instance_id = %(instance_id)s AND h.run_id = %(run_id)s AND h.seq = x.seq
), gone_vars AS (
    DELETE FROM {schema}.vars WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
), gone_inbox AS (
    DELETE FROM {schema}.inbox WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
), gone_tasks AS (
    DELETE FROM {schema}.activity_tasks
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
), hook_payloads AS (
    -- The result, failure or pause reason copied into the run's hook deliveries.
    UPDATE {schema}.hook_deliveries SET result = NULL
    WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s
), hook_errors AS (
    -- What its hooks said when they failed (their errors may quote it).
    UPDATE {schema}.hook_attempts SET last_error = NULL
    WHERE delivery_id IN (SELECT delivery_id FROM {schema}.hook_deliveries
                          WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s)
)
UPDATE {schema}.runs SET result = NULL, blocked_reason = NULL, redacted_at = %(now)s
WHERE instance_id = %(instance_id)s AND run_id = %(run_id)s

-- name: closed_runs_to_redact
-- Any closed run (not only the latest) not redacted yet: the partial index runs_to_redact.
SELECT instance_id, run_id FROM {schema}.runs
WHERE closed_at IS NOT NULL AND redacted_at IS NULL AND closed_at < %(closed_before)s
ORDER BY closed_at
LIMIT %(limit)s

-- name: claim_sweep
-- Changes no row (returns none) while another holder's lease runs.
INSERT INTO {schema}.sweeps (name, holder, expires_at)
VALUES (%(name)s, %(holder)s, %(expires_at)s)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE {schema}.sweeps.holder = excluded.holder OR {schema}.sweeps.expires_at <= %(now)s
RETURNING 1

-- name: release_sweep
DELETE FROM {schema}.sweeps WHERE name = %(name)s AND holder = %(holder)s

-- ---- batches ------------------------------------------------------------------------------
-- Concurrent callers' operations of one kind, applied by one statement (PostgresBackend.
-- _Batcher): one round trip, one transaction and one notification per channel for the whole
-- batch. Each item is fenced on its own; the statement returns a row per item whose fence
-- held. A statement is atomic: if it fails, nothing of the batch is written.

-- name: commit_workflow_tasks
-- commit_workflow_task for several runs (distinct runs; the shapes commit_workflow_task
-- takes). Per run k: its new events are events[event_from[k]:event_to[k]], likewise for the
-- consumed inbox ids, activities (a_*), timers (m_*) and variables (v_*). Rows: k and ok for
-- every run whose fence held (ok = false: a close of a run with a parent, nothing written).
-- Runs are locked in key order, so two batches never wait for each other in a cycle.
-- Eager dispatch as in commit_workflow_task (a_eager_tokens, a_eager_expires per activity).
WITH input AS (
    SELECT *
    FROM unnest(%(instance_ids)b::text[], %(run_ids)b::text[], %(lease_tokens)b::text[],
                %(history_lengths)b::integer[], %(closings)b::boolean[],
                %(close_statuses)b::text[], %(results)b::bytea[],
                %(event_from)b::integer[], %(event_to)b::integer[],
                %(consumed_from)b::integer[], %(consumed_to)b::integer[],
                %(activity_from)b::integer[], %(activity_to)b::integer[],
                %(timer_from)b::integer[], %(timer_to)b::integer[],
                %(var_from)b::integer[], %(var_to)b::integer[], %(sticky_workers)b::text[],
                %(release_payloads)b::text[])
         WITH ORDINALITY AS x(instance_id, run_id, lease_token, history_length, closing,
                              close_status, result, event_from, event_to, consumed_from,
                              consumed_to, activity_from, activity_to, timer_from, timer_to,
                              var_from, var_to, sticky_worker, release_payload, k)
), fence AS (
    SELECT x.*, (r.parent_instance_id IS NULL OR NOT x.closing) AS ok,
           r.paused_at IS NOT NULL AS paused
    FROM input AS x
    JOIN {schema}.runs AS r ON r.instance_id = x.instance_id AND r.run_id = x.run_id
    WHERE r.status = 'running' AND r.lease_token = x.lease_token
      AND r.history_length = x.history_length
    ORDER BY x.instance_id, x.run_id
    FOR NO KEY UPDATE OF r
), target AS (
    SELECT * FROM fence WHERE ok
), appended AS (
    INSERT INTO {schema}.history (instance_id, run_id, seq, event)
    SELECT t.instance_id, t.run_id, t.history_length + e.ord::integer, e.event
    FROM target AS t,
         unnest((%(events)b::bytea[])[t.event_from:t.event_to]) WITH ORDINALITY AS e(event, ord)
), consumed AS (
    DELETE FROM {schema}.inbox AS i
    USING target AS t
    WHERE i.instance_id = t.instance_id AND i.run_id = t.run_id
      AND (t.closing OR i.id = ANY((%(consumed)b::bigint[])[t.consumed_from:t.consumed_to]))
), activities AS (
    INSERT INTO {schema}.activity_tasks (
        instance_id, run_id, activity_id, name, queue, input, options, deadline, scheduled_at,
        visible_at, attempt, lease_token, lease_expires_at, priority)
    SELECT t.instance_id, t.run_id, a.activity_id, a.name, a.queue, a.input, a.options,
           a.deadline, %(now)s, %(now)s, CASE WHEN e.leased THEN 1 ELSE 0 END,
           CASE WHEN e.leased THEN a.eager_token END,
           CASE WHEN e.leased THEN a.eager_expires END, a.priority
    FROM target AS t,
         unnest((%(a_activity_ids)b::integer[])[t.activity_from:t.activity_to],
                (%(a_names)b::bytea[])[t.activity_from:t.activity_to],
                (%(a_queues)b::text[])[t.activity_from:t.activity_to],
                (%(a_inputs)b::bytea[])[t.activity_from:t.activity_to],
                (%(a_options)b::bytea[])[t.activity_from:t.activity_to],
                (%(a_deadlines)b::float8[])[t.activity_from:t.activity_to],
                (%(a_eager_tokens)b::text[])[t.activity_from:t.activity_to],
                (%(a_eager_expires)b::float8[])[t.activity_from:t.activity_to],
                (%(a_priorities)b::integer[])[t.activity_from:t.activity_to])
         WITH ORDINALITY AS a(activity_id, name, queue, input, options, deadline, eager_token,
                              eager_expires, priority, ord),
         LATERAL (SELECT a.eager_token IS NOT NULL AND NOT t.paused
                         AND NOT EXISTS (SELECT 1 FROM {schema}.queue_limits AS l
                                         WHERE l.queue = a.queue) AS leased) AS e
    ORDER BY t.k, a.ord
    RETURNING instance_id, run_id, task_id, activity_id, lease_token IS NOT NULL AS leased
), timers AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, timer_id, event)
    SELECT t.instance_id, t.run_id, m.fire_at, m.timer_id, m.event
    FROM target AS t,
         unnest((%(m_timer_ids)b::integer[])[t.timer_from:t.timer_to],
                (%(m_fire_ats)b::float8[])[t.timer_from:t.timer_to],
                (%(m_events)b::bytea[])[t.timer_from:t.timer_to])
         WITH ORDINALITY AS m(timer_id, fire_at, event, ord)
    ORDER BY t.k, m.ord
), variables AS (
    INSERT INTO {schema}.vars (instance_id, run_id, name, value)
    SELECT t.instance_id, t.run_id, v.name, v.value
    FROM target AS t,
         unnest((%(v_names)b::bytea[])[t.var_from:t.var_to],
                (%(v_values)b::bytea[])[t.var_from:t.var_to]) AS v(name, value)
    ON CONFLICT (instance_id, run_id, name) DO UPDATE SET value = EXCLUDED.value
), dropped_activities AS (
    DELETE FROM {schema}.activity_tasks AS a
    USING target AS t
    WHERE t.closing AND a.instance_id = t.instance_id AND a.run_id = t.run_id
      AND (a.lease_expires_at IS NULL OR a.lease_expires_at <= %(now)s)
), cancelled_activities AS (
    UPDATE {schema}.activity_tasks AS a SET cancel_requested = true
    FROM target AS t
    WHERE t.closing AND a.instance_id = t.instance_id AND a.run_id = t.run_id
      AND a.lease_expires_at > %(now)s
), finished AS (
    UPDATE {schema}.runs AS r
    SET history_length = r.history_length + (t.event_to - t.event_from + 1),
        lease_token = NULL, lease_expires_at = NULL, ready_at = NULL, blocked_reason = NULL,
        failed_attempts = 0, updated_at = %(now)s, sticky_worker = t.sticky_worker,
        status = coalesce(t.close_status, r.status),
        result = CASE WHEN t.closing THEN t.result ELSE r.result END,
        closed_at = CASE WHEN t.closing THEN %(now)s::float8 ELSE r.closed_at END
    FROM target AS t
    WHERE r.instance_id = t.instance_id AND r.run_id = t.run_id
), notified AS (
    SELECT pg_notify(n.channel, n.payload)
    FROM unnest(%(channels)b::text[], %(payloads)b::text[]) AS n(channel, payload)
    WHERE EXISTS (SELECT 1 FROM target)
), released AS (
    -- As in commit_workflow_task: workflow workers are told of a released run only if
    -- events arrived during its task (or it set timers).
    SELECT t.k, pg_notify(%(release_channel)s, t.release_payload)
    FROM target AS t
    WHERE NOT t.closing
      AND (t.timer_to >= t.timer_from
           OR EXISTS (SELECT 1 FROM {schema}.inbox AS i
                      WHERE i.instance_id = t.instance_id AND i.run_id = t.run_id
                        AND NOT (i.id = ANY((%(consumed)b::bigint[])
                                             [t.consumed_from:t.consumed_to]))))
)
SELECT k, ok, (SELECT count(*) FROM notified) AS notifications,
       EXISTS (SELECT 1 FROM released AS r WHERE r.k = f.k) AS released,
       ARRAY(SELECT a.task_id FROM activities AS a
             WHERE a.leased AND a.instance_id = f.instance_id AND a.run_id = f.run_id
             ORDER BY a.activity_id) AS eager_task_ids,
       ARRAY(SELECT a.activity_id FROM activities AS a
             WHERE a.leased AND a.instance_id = f.instance_id AND a.run_id = f.run_id
             ORDER BY a.activity_id) AS eager_activity_ids
FROM fence AS f

-- name: create_runs
-- create_run for several new workflow ids (distinct, without a parent). A run is created
-- only where its id is new: an id already known, or being started by a transaction in
-- progress (the insert waits for it), is left out, and its caller starts it the single way,
-- which decides between reusing the id and WorkflowAlreadyStartedError. Per run k its first
-- inbox events: workflow_started at visible_ats[k] and, with a deadline, timed_out at
-- deadlines[k]. Rows: k of every run created. Ids are inserted in key order, so two batches
-- never wait for each other in a cycle. Eager starts (lease_tokens[k] not NULL) are created
-- leased for lease_seconds[k]; rows also give the started event's inbox id.
WITH input AS (
    SELECT *
    FROM unnest(%(instance_ids)b::text[], %(run_ids)b::text[], %(workflow_names)b::text[],
                %(queues)b::text[], %(ready_ats)b::float8[], %(visible_ats)b::float8[],
                %(events)b::bytea[], %(deadlines)b::float8[], %(tags)b::text[],
                %(priorities)b::integer[], %(lease_tokens)b::text[], %(lease_seconds)b::float8[])
         WITH ORDINALITY AS x(instance_id, run_id, workflow_name, queue, ready_at, visible_at,
                              event, deadline, tags, priority, lease_token, lease_seconds, k)
), new_instances AS (
    INSERT INTO {schema}.instances (instance_id, latest_run_id)
    SELECT instance_id, run_id FROM input ORDER BY instance_id
    ON CONFLICT (instance_id) DO NOTHING
    RETURNING instance_id
), created AS (
    SELECT x.* FROM input AS x JOIN new_instances AS n USING (instance_id)
), new_runs AS (
    INSERT INTO {schema}.runs (
        instance_id, run_id, workflow_name, queue, created_at, updated_at, ready_at, tags,
        priority, lease_token, lease_expires_at)
    SELECT instance_id, run_id, workflow_name, queue, %(now)s, %(now)s, ready_at, tags::jsonb,
           priority, lease_token, %(now)s::float8 + lease_seconds
    FROM created
    ORDER BY k
), started AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event, priority)
    SELECT x.instance_id, x.run_id, e.visible_at, e.event, x.priority
    FROM created AS x
    CROSS JOIN LATERAL (VALUES (1, x.visible_at, x.event),
                               (2, x.deadline, %(timed_out)s::bytea)) AS e(ord, visible_at, event)
    WHERE e.visible_at IS NOT NULL
    ORDER BY x.k, e.ord
    RETURNING instance_id, id
), notified AS (
    SELECT pg_notify(n.channel, n.payload)
    FROM unnest(%(channels)b::text[], %(payloads)b::text[]) AS n(channel, payload)
    WHERE EXISTS (SELECT 1 FROM created)
)
SELECT k, (SELECT count(*) FROM notified) AS notifications,
       (SELECT min(s.id) FROM started AS s WHERE s.instance_id = c.instance_id) AS first_event
FROM created AS c

-- name: complete_activities
-- complete_activity for several tasks (distinct task ids), continuing locally where asked
-- (workers[k] set: as complete_activity_claiming, except that the inbox is read afterwards;
-- a run completed twice in the batch goes with its first such completion). Rows, for every
-- task whose fence held: k, the run's queue (NULL when the run is no longer open) and, if
-- the run was leased to workers[k], its workflow name, history length and failed attempts.
-- Runs are locked in key order, as commit_workflow_tasks locks them.
WITH input AS (
    SELECT *
    FROM unnest(%(task_ids)b::bigint[], %(lease_tokens)b::text[], %(events)b::bytea[],
                %(workers)b::text[], %(new_lease_tokens)b::text[], %(lease_seconds)b::float8[])
         WITH ORDINALITY AS x(task_id, lease_token, event, worker, new_lease_token,
                              lease_seconds, k)
), done AS (
    DELETE FROM {schema}.activity_tasks AS a
    USING input AS x
    WHERE a.task_id = x.task_id AND a.lease_token = x.lease_token
    RETURNING x.k, x.event, x.worker, x.new_lease_token, x.lease_seconds, a.instance_id,
              a.run_id
), target AS (
    SELECT d.k, d.event, d.worker, d.new_lease_token, d.lease_seconds, r.instance_id,
           r.run_id, r.queue
    FROM done AS d
    JOIN LATERAL (
        SELECT r.instance_id, r.run_id, r.queue FROM {schema}.runs AS r
        WHERE r.instance_id = d.instance_id AND r.run_id = d.run_id AND r.status = 'running'
        OFFSET 0
    ) AS r ON true
), delivered AS (
    INSERT INTO {schema}.inbox (instance_id, run_id, visible_at, event)
    SELECT instance_id, run_id, %(now)s, event FROM target ORDER BY k
), wanted AS (
    SELECT DISTINCT ON (instance_id, run_id) k, instance_id, run_id, worker, new_lease_token,
           lease_seconds
    FROM target WHERE worker IS NOT NULL
    ORDER BY instance_id, run_id, k
), locked AS (
    SELECT w.k, r.instance_id, r.run_id
    FROM wanted AS w
    JOIN {schema}.runs AS r ON r.instance_id = w.instance_id AND r.run_id = w.run_id
    WHERE r.status = 'running' AND r.sticky_worker = w.worker AND r.paused_at IS NULL
      AND (r.ready_at IS NULL OR r.ready_at <= %(now)s)
      AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= %(now)s)
    ORDER BY r.instance_id, r.run_id
    FOR NO KEY UPDATE OF r
), claimed AS (
    UPDATE {schema}.runs AS r
    SET lease_token = w.new_lease_token,
        lease_expires_at = %(now)s::float8 + w.lease_seconds, ready_at = NULL
    FROM locked AS l JOIN wanted AS w USING (k)
    WHERE r.instance_id = l.instance_id AND r.run_id = l.run_id
    RETURNING l.k, r.workflow_name, r.history_length, r.failed_attempts
), notified AS (
    SELECT pg_notify(%(channel)s, q.queue)
    FROM (SELECT DISTINCT t.queue FROM target AS t
          WHERE NOT EXISTS (SELECT 1 FROM locked AS l
                            WHERE l.instance_id = t.instance_id AND l.run_id = t.run_id)
         ) AS q
)
SELECT d.k, t.queue, (SELECT count(*) FROM notified) AS notifications, c.workflow_name,
       c.history_length, c.failed_attempts
FROM done AS d LEFT JOIN target AS t USING (k) LEFT JOIN claimed AS c USING (k)

-- ---- hooks (ostinato.hook; the outbox rows are written by a trigger, migration 0007) -------

-- name: subscribe_hooks
INSERT INTO {schema}.hook_subscriptions (queue, subscribed_until)
SELECT q, %(until)s FROM unnest(%(queues)s::text[]) AS q
ON CONFLICT (queue) DO UPDATE
SET subscribed_until = greatest({schema}.hook_subscriptions.subscribed_until,
                                EXCLUDED.subscribed_until)

-- name: claim_hook_deliveries
-- (delivery, hook) pairs never attempted, or pending with their retry time come and no live
-- lease. Two workers racing for a pair meet in the insert: the loser waits for the winner's
-- row and its update's condition (no live lease) then fails, so it claims nothing.
WITH candidates AS (
    SELECT d.seq, d.delivery_id, h.hook
    FROM {schema}.hook_deliveries AS d
    CROSS JOIN unnest(%(hooks)s::text[]) WITH ORDINALITY AS h(hook, n)
    LEFT JOIN {schema}.hook_attempts AS a ON a.delivery_id = d.delivery_id AND a.hook = h.hook
    WHERE d.queue = ANY(%(queues)s)
      AND (a.delivery_id IS NULL
           OR (a.state = 'pending' AND a.visible_at <= %(now)s
               AND coalesce(a.lease_expires_at, 0) <= %(now)s))
    ORDER BY d.seq, h.n
    LIMIT %(limit)s
), claimed AS (
    INSERT INTO {schema}.hook_attempts AS a (delivery_id, hook, attempts, visible_at,
                                             lease_token, lease_expires_at)
    SELECT delivery_id, hook, 1, %(now)s, %(token)s, %(expires)s FROM candidates
    ON CONFLICT (delivery_id, hook) DO UPDATE
    SET attempts = a.attempts + 1, lease_token = EXCLUDED.lease_token,
        lease_expires_at = EXCLUDED.lease_expires_at
    WHERE a.state = 'pending' AND a.visible_at <= %(now)s
      AND coalesce(a.lease_expires_at, 0) <= %(now)s
    RETURNING a.delivery_id, a.hook, a.attempts
)
SELECT c.delivery_id, c.hook, d.instance_id, d.run_id, d.workflow_name, d.queue, d.status,
       d.occurred_at, d.result, c.attempts
FROM claimed AS c JOIN {schema}.hook_deliveries AS d USING (delivery_id)
ORDER BY d.seq

-- name: lock_hook_delivery
-- Serializes the finishing of one delivery's hooks, so the last one sees the others done.
SELECT 1 FROM {schema}.hook_deliveries WHERE delivery_id = %(delivery_id)s FOR UPDATE

-- name: hook_pair_delivered
UPDATE {schema}.hook_attempts
SET state = 'delivered', lease_token = NULL, lease_expires_at = NULL
WHERE delivery_id = %(delivery_id)s AND hook = %(hook)s AND lease_token = %(token)s
  AND state = 'pending'
RETURNING 1

-- name: delete_delivered_hook_delivery
-- Once each of the finishing worker's hooks was delivered; its attempts go with it.
WITH gone AS (
    DELETE FROM {schema}.hook_deliveries
    WHERE delivery_id = %(delivery_id)s
      AND (SELECT count(*) FROM {schema}.hook_attempts
           WHERE delivery_id = %(delivery_id)s AND state = 'delivered'
             AND hook = ANY(%(hooks)s)) = cardinality(%(hooks)s::text[])
    RETURNING delivery_id
)
DELETE FROM {schema}.hook_attempts WHERE delivery_id IN (SELECT delivery_id FROM gone)

-- name: hook_pair_failed
-- retry_at NULL: given up for good (kept for list_hook_failures).
UPDATE {schema}.hook_attempts
SET lease_token = NULL, lease_expires_at = NULL, last_error = %(error)s,
    visible_at = coalesce(%(retry_at)s::float8, visible_at),
    state = CASE WHEN %(retry_at)s::float8 IS NULL THEN 'gave_up' ELSE 'pending' END
WHERE delivery_id = %(delivery_id)s AND hook = %(hook)s AND lease_token = %(token)s
  AND state = 'pending'
RETURNING 1

-- name: list_hook_failures
SELECT d.delivery_id, a.hook, d.instance_id, d.run_id, d.workflow_name, d.status,
       d.occurred_at, a.attempts, a.last_error
FROM {schema}.hook_attempts AS a
JOIN {schema}.hook_deliveries AS d ON d.delivery_id = a.delivery_id
WHERE a.state = 'gave_up'
ORDER BY d.seq DESC, a.hook
LIMIT %(limit)s

-- name: purge_hook_failures
-- At most limit deliveries older than given_up_before with a pair given up, oldest first,
-- with all their pairs; and pairs whose delivery is gone (a claim racing the deletion of
-- its run can leave one). Rows: the deliveries deleted.
WITH doomed AS (
    SELECT d.delivery_id FROM {schema}.hook_deliveries AS d
    WHERE d.occurred_at < %(before)s
      AND EXISTS (SELECT 1 FROM {schema}.hook_attempts AS a
                  WHERE a.delivery_id = d.delivery_id AND a.state = 'gave_up')
    ORDER BY d.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone_attempts AS (
    DELETE FROM {schema}.hook_attempts AS a
    WHERE a.delivery_id IN (SELECT delivery_id FROM doomed)
       OR NOT EXISTS (SELECT 1 FROM {schema}.hook_deliveries AS d
                      WHERE d.delivery_id = a.delivery_id)
)
DELETE FROM {schema}.hook_deliveries WHERE delivery_id IN (SELECT delivery_id FROM doomed)
RETURNING delivery_id
