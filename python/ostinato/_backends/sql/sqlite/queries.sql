-- Queries of the SQLite backend, one named block each ("-- name: NAME" up to the next).
--
-- Parameters are positional (?). When the file is loaded, {run_columns} and {claimable} are
-- replaced by the fragment blocks of those names; {queues} is replaced, per call, by one ?
-- per queue of the caller (IN lists), and {filters} of list_runs by the filter_* fragments the
-- caller asked for. Times are the backend clock's, passed in as parameters. Transaction
-- control (BEGIN IMMEDIATE, SAVEPOINT ...) and PRAGMAs stay in sqlite.py: they are plumbing,
-- not queries.

-- ---- fragments -------------------------------------------------------------------------------

-- name: run_columns
-- (not a query: the columns of _RunRow, shared by every query that reads whole runs)
r.id, r.instance_id, r.run_id, r.workflow_name, r.queue, r.status, r.created_at, r.updated_at,
r.closed_at, r.history_length, r.result, r.blocked_reason, r.parent_instance_id,
r.parent_run_id, r.parent_command_id, r.next_run_id, r.tags, r.paused_at, r.pause_reason,
r.priority, r.lease_token

-- name: claimable
-- (not a query) An inbox event i of run r that a worker may claim now: visible, its run open,
-- not under a live lease, not delayed, not paused, and not left to another worker that has the
-- run cached (until it has waited sticky_wait). Parameters: now, now, now, worker,
-- sticky_wait, now.
i.visible_at <= ? AND r.status = 'running' AND r.paused_at IS NULL
AND (r.lease_token IS NULL OR r.lease_expires_at <= ?)
AND (r.ready_at IS NULL OR r.ready_at <= ?)
AND (r.sticky_worker IS NULL OR r.sticky_worker = ? OR i.visible_at + ? <= ?)

-- name: filter_before
i.latest_run < ?

-- name: filter_status
r.status = ?

-- name: filter_workflow
r.workflow_name = ?

-- name: filter_queue
r.queue = ?

-- name: filter_tag
-- One per tag asked for: the run has that key with that value (a scan of the latest runs;
-- PostgreSQL has the index, see docs/search.md).
EXISTS (SELECT 1 FROM json_each(r.tags) AS t WHERE t.key = ? AND t.value = ?)

-- name: filter_started_after
r.created_at >= ?

-- name: filter_started_before
r.created_at < ?

-- name: filter_closed_after
r.closed_at >= ?

-- name: filter_blocked
r.blocked_reason IS NOT NULL

-- name: filter_not_blocked
r.blocked_reason IS NULL

-- name: filter_paused
r.paused_at IS NOT NULL

-- name: filter_not_paused
r.paused_at IS NULL

-- ---- schema ----------------------------------------------------------------------------------

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)

-- name: applied_versions
SELECT version FROM schema_version

-- name: record_schema_version
INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)

-- name: schema_versions
SELECT version, name FROM schema_version ORDER BY version

-- ---- reading runs ----------------------------------------------------------------------------

-- name: latest_run
SELECT {run_columns} FROM runs AS r
WHERE r.id = (SELECT latest_run FROM instances WHERE instance_id = ?)

-- name: run_by_id
SELECT {run_columns} FROM runs AS r WHERE r.instance_id = ? AND r.run_id = ?

-- name: previous_runs
-- The runs a run continued from (continue-as-new), newest first: each names the next one in
-- next_run_id. Parameters: instance_id, run_id, instance_id, limit.
WITH RECURSIVE back(run_id, depth) AS (
    SELECT run_id, 1 FROM runs WHERE instance_id = ? AND next_run_id = ?
    UNION ALL
    SELECT r.run_id, b.depth + 1 FROM back AS b
    JOIN runs AS r ON r.instance_id = ? AND r.next_run_id = b.run_id
    WHERE b.depth < ?
)
SELECT run_id FROM back ORDER BY depth

-- name: open_run
-- The instance's open run, if it has one.
SELECT {run_columns} FROM instances i JOIN runs r ON r.id = i.latest_run
WHERE i.instance_id = ? AND r.status = 'running'

-- name: latest_run_status
SELECT r.status FROM instances i JOIN runs r ON r.id = i.latest_run WHERE i.instance_id = ?

-- name: run_id_taken
SELECT 1 FROM runs WHERE instance_id = ? AND run_id = ?

-- name: instance_exists
SELECT 1 FROM instances WHERE instance_id = ?

-- name: open_children
SELECT {run_columns} FROM runs AS r
WHERE r.parent_instance_id = ? AND r.parent_run_id = ? AND r.status = 'running'
ORDER BY r.id

-- name: open_run_queue_by_pk
SELECT queue FROM runs WHERE id = ? AND status = 'running'

-- name: open_run_by_id
SELECT {run_columns} FROM runs AS r
WHERE r.instance_id = ? AND r.run_id = ? AND r.status = 'running'

-- name: history
SELECT event FROM history WHERE run = ? ORDER BY seq

-- name: list_runs
SELECT {run_columns} FROM instances i JOIN runs r ON r.id = i.latest_run
WHERE {filters} ORDER BY i.latest_run DESC LIMIT ?

-- name: get_vars
SELECT name, value FROM vars WHERE run = ?

-- ---- writing runs ----------------------------------------------------------------------------

-- name: insert_run
INSERT INTO runs (instance_id, run_id, workflow_name, queue, status, created_at, updated_at,
                  ready_at, parent_instance_id, parent_run_id, parent_command_id, tags,
                  priority)
VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)

-- name: set_latest_run
INSERT INTO instances (instance_id, latest_run) VALUES (?, ?)
ON CONFLICT (instance_id) DO UPDATE SET latest_run = excluded.latest_run

-- name: push_inbox
INSERT INTO inbox (run, queue, visible_at, timer_id, event) VALUES (?, ?, ?, ?, ?)

-- name: close_run
UPDATE runs SET status = ?, result = ?, closed_at = ?, updated_at = ?,
    lease_token = NULL, lease_expires_at = NULL, ready_at = NULL
WHERE id = ?

-- name: keep_closed
-- A run closed without a workflow task (terminate), kept for claim_closed_runs: a mark in its
-- inbox visible at 1e13 (_backend_events.CLOSED_MARK_AT), a time no claim or wake-up reaches.
INSERT INTO inbox (run, queue, visible_at, event) VALUES (?, ?, 1e13, ?)

-- name: closed_marks
SELECT i.id, r.instance_id, r.run_id, r.workflow_name, r.queue, r.status, r.closed_at,
       r.result, i.event
FROM inbox i JOIN runs r ON r.id = i.run
WHERE i.queue IN ({queues}) AND i.visible_at = 1e13 AND r.status <> 'running'
ORDER BY i.id LIMIT ?

-- name: delete_closed_mark
DELETE FROM inbox WHERE id = ?

-- name: run_inbox_events
SELECT event FROM inbox WHERE run = ? ORDER BY id

-- name: drop_run_inbox
DELETE FROM inbox WHERE run = ?

-- name: drop_idle_run_activities
-- A closed run's activity tasks that no live lease holds go; running ones are cancelled.
DELETE FROM activity_tasks WHERE run = ? AND (lease_token IS NULL OR lease_expires_at <= ?)

-- name: cancel_run_activities
UPDATE activity_tasks SET cancel_requested = 1 WHERE run = ?

-- name: set_next_run_id
UPDATE runs SET next_run_id = ? WHERE id = ?

-- name: append_history
INSERT INTO history (run, seq, event) VALUES (?, ?, ?)

-- name: set_history_length
UPDATE runs SET history_length = ? WHERE id = ?

-- name: delete_history
DELETE FROM history WHERE run IN (SELECT id FROM runs WHERE instance_id = ?)

-- name: delete_inbox
DELETE FROM inbox WHERE run IN (SELECT id FROM runs WHERE instance_id = ?)

-- name: delete_activity_tasks
DELETE FROM activity_tasks WHERE run IN (SELECT id FROM runs WHERE instance_id = ?)

-- name: delete_vars
DELETE FROM vars WHERE run IN (SELECT id FROM runs WHERE instance_id = ?)

-- name: delete_runs
DELETE FROM runs WHERE instance_id = ?

-- name: delete_instance
DELETE FROM instances WHERE instance_id = ?

-- ---- workflow tasks --------------------------------------------------------------------------

-- name: find_claimable_runs
-- Highest claim rank first (docs/queues.md, _queue_limits.claim_rank): the run's earliest
-- visible event, moved 60 s earlier per level of the run's priority; then arrival order.
SELECT i.run, MIN(i.id) AS first FROM inbox i JOIN runs r ON r.id = i.run
WHERE i.queue IN ({queues}) AND {claimable}
GROUP BY i.run ORDER BY MIN(i.visible_at) - r.priority * 60, first LIMIT ?

-- name: lease_run
UPDATE runs SET lease_token = ?, lease_expires_at = ? WHERE id = ?

-- name: claimed_run
SELECT instance_id, run_id, workflow_name, queue, history_length, failed_attempts, ready_at
FROM runs WHERE id = ?

-- name: visible_inbox
SELECT id, event, visible_at FROM inbox WHERE run = ? AND visible_at <= ? ORDER BY id

-- name: consume_inbox
DELETE FROM inbox WHERE run = ? AND id = ?

-- name: insert_activity_task
INSERT INTO activity_tasks (run, activity_id, name, queue, input, options, visible_at,
                            scheduled_at, deadline, priority)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: drop_idle_activity
DELETE FROM activity_tasks
WHERE run = ? AND activity_id = ? AND (lease_token IS NULL OR lease_expires_at <= ?)

-- name: cancel_activity
UPDATE activity_tasks SET cancel_requested = 1 WHERE run = ? AND activity_id = ?

-- name: cancel_timer
DELETE FROM inbox WHERE run = ? AND timer_id = ?

-- name: upsert_var
INSERT INTO vars (run, name, value) VALUES (?, ?, ?)
ON CONFLICT (run, name) DO UPDATE SET value = excluded.value

-- name: finish_task
UPDATE runs SET history_length = ?, updated_at = ?, lease_token = NULL,
    lease_expires_at = NULL, ready_at = NULL, blocked_reason = NULL,
    failed_attempts = 0, sticky_worker = ?
WHERE id = ?

-- name: run_has_inbox
SELECT 1 FROM inbox WHERE run = ? LIMIT 1

-- name: fail_task
UPDATE runs SET lease_token = NULL, lease_expires_at = NULL, sticky_worker = NULL,
    blocked_reason = ?, ready_at = ?, failed_attempts = failed_attempts + 1, updated_at = ?
WHERE id = ?

-- name: pause_run
-- pause(): no workflow task or activity attempt is handed out until resume.
-- Each pause is numbered (pauses): the trigger of migration 0010 writes its hook delivery.
UPDATE runs SET paused_at = ?, pause_reason = ?, pauses = pauses + 1
WHERE id = ? AND status = 'running' AND paused_at IS NULL

-- name: unpause_run
UPDATE runs SET paused_at = NULL, pause_reason = NULL
WHERE id = ? AND status = 'running' AND paused_at IS NOT NULL

-- name: run_activity_queues
SELECT DISTINCT queue FROM activity_tasks WHERE run = ?

-- name: retry_blocked_now
-- resume(): a run blocked on a failing workflow task is retried at once.
UPDATE runs SET ready_at = NULL
WHERE id = ? AND status = 'running' AND failed_attempts > 0 AND ready_at IS NOT NULL

-- name: release_task
UPDATE runs SET lease_token = NULL, lease_expires_at = NULL, sticky_worker = NULL
WHERE id = ?

-- name: sticky_queues
SELECT DISTINCT queue FROM runs
WHERE sticky_worker = ? AND status = 'running' AND queue IN ({queues})

-- name: release_sticky
UPDATE runs SET sticky_worker = NULL
WHERE sticky_worker = ? AND status = 'running' AND queue IN ({queues})

-- name: extend_run_lease
UPDATE runs SET lease_expires_at = ? WHERE id = ?

-- ---- activity tasks --------------------------------------------------------------------------

-- name: drop_cancelled_activities
-- Cancelled while running and its worker is gone: never run it again.
DELETE FROM activity_tasks
WHERE queue IN ({queues}) AND visible_at <= ? AND cancel_requested = 1

-- name: find_claimable_activities
-- Highest claim rank first (docs/queues.md, _queue_limits.claim_rank): ready time moved 60 s
-- earlier per priority level, then task id. The index of that order is walked from the
-- start and stopped after the limit, without sorting the backlog: the rank is never later
-- than visible_at (priorities are at least 0), so "rank <= now" bounds the walk.
-- Parameters: the queues, now, now, the limit.
SELECT a.id, r.instance_id, r.run_id, a.activity_id, a.name, a.queue, a.input, a.options,
       a.attempt, a.scheduled_at, a.deadline, a.heartbeat_details, r.workflow_name,
       a.visible_at, a.priority
FROM activity_tasks a INDEXED BY activity_tasks_by_rank JOIN runs r ON r.id = a.run
WHERE a.queue IN ({queues}) AND a.visible_at - a.priority * 60 <= ? AND a.visible_at <= ?
  AND a.cancel_requested = 0 AND r.paused_at IS NULL
ORDER BY a.visible_at - a.priority * 60, a.id LIMIT ?

-- ---- queue limits (docs/queues.md) -----------------------------------------------------------

-- name: queue_limits_of
SELECT queue, max_concurrent, rate_count, rate_period, max_concurrent_per_key
FROM queue_limits WHERE queue IN ({queues})

-- name: all_queue_limits
SELECT queue, max_concurrent, rate_count, rate_period, max_concurrent_per_key FROM queue_limits

-- name: ready_activity_options
-- What a claim of the queue would consider, in claim order (find_claimable_activities'
-- rows, options only): to count the tasks its limits hold back (stats, wake-ups).
SELECT a.options FROM activity_tasks a JOIN runs r ON r.id = a.run
WHERE a.queue = ? AND a.visible_at <= ? AND a.cancel_requested = 0 AND r.paused_at IS NULL
ORDER BY a.visible_at, a.id

-- name: ready_activity_count
SELECT count(*) FROM activity_tasks a JOIN runs r ON r.id = a.run
WHERE a.queue = ? AND a.visible_at <= ? AND a.cancel_requested = 0 AND r.paused_at IS NULL

-- name: queue_starts_since
-- Starts in the rate window, and the oldest of them (the window frees a slot when it leaves).
SELECT count(*), min(started_at) FROM queue_starts WHERE queue = ? AND started_at > ?

-- name: get_queue_limits
SELECT queue, max_concurrent, rate_count, rate_period, max_concurrent_per_key
FROM queue_limits WHERE queue = ?

-- name: set_queue_limits
INSERT INTO queue_limits (queue, max_concurrent, rate_count, rate_period, max_concurrent_per_key)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (queue) DO UPDATE SET max_concurrent = excluded.max_concurrent,
    rate_count = excluded.rate_count, rate_period = excluded.rate_period,
    max_concurrent_per_key = excluded.max_concurrent_per_key

-- name: options_in_flight
-- The options (for their concurrency_key) of the attempts in flight on a queue.
SELECT options FROM activity_tasks
WHERE queue = ? AND lease_token IS NOT NULL AND lease_expires_at > ?

-- name: delete_queue_limits
DELETE FROM queue_limits WHERE queue = ?

-- name: delete_queue_starts
DELETE FROM queue_starts WHERE queue = ?

-- name: activities_in_flight
-- Claimed attempts whose lease has not expired (retried ones have no lease).
SELECT count(*) FROM activity_tasks
WHERE queue = ? AND lease_token IS NOT NULL AND lease_expires_at > ?

-- name: prune_queue_starts
DELETE FROM queue_starts WHERE queue = ? AND started_at <= ?

-- name: count_queue_starts
SELECT count(*) FROM queue_starts WHERE queue = ? AND started_at > ?

-- name: record_queue_start
INSERT INTO queue_starts (queue, started_at) VALUES (?, ?)

-- name: lease_activity
UPDATE activity_tasks SET attempt = attempt + 1, lease_token = ?, lease_expires_at = ?,
    visible_at = ?
WHERE id = ?

-- name: lease_new_activity
-- Eager dispatch: the committing worker takes a task its commit just queued (attempt 1).
UPDATE activity_tasks SET attempt = 1, lease_token = ?, lease_expires_at = ?, visible_at = ?
WHERE run = ? AND activity_id = ? AND lease_token IS NULL AND cancel_requested = 0
RETURNING id

-- name: claim_run_locally
-- Continue locally: an activity's completion leases its run to the worker that has it cached,
-- when nothing else holds it (see claim_workflow_tasks' conditions).
UPDATE runs SET lease_token = ?, lease_expires_at = ?
WHERE id = ? AND status = 'running' AND sticky_worker = ? AND paused_at IS NULL
  AND (ready_at IS NULL OR ready_at <= ?)
  AND (lease_token IS NULL OR lease_expires_at <= ?)
RETURNING instance_id, run_id, workflow_name, queue, history_length, failed_attempts

-- name: leased_activity
SELECT run, cancel_requested FROM activity_tasks WHERE id = ? AND lease_token = ?

-- name: heartbeat_activity
-- A lease tick without details (NULL) keeps the stored ones.
UPDATE activity_tasks SET heartbeat_details = coalesce(?, heartbeat_details),
    lease_expires_at = ?, visible_at = ?
WHERE id = ?

-- name: delete_activity
DELETE FROM activity_tasks WHERE id = ?

-- name: retry_activity
UPDATE activity_tasks SET lease_token = NULL, lease_expires_at = NULL, visible_at = ?,
    last_failure = coalesce(?, last_failure)
WHERE id = ?

-- name: activity_states
SELECT a.activity_id, a.name, a.attempt, a.scheduled_at, a.visible_at, a.lease_expires_at,
       a.cancel_requested, a.heartbeat_details, a.last_failure
FROM activity_tasks a JOIN runs r ON r.id = a.run
WHERE r.instance_id = ? AND r.run_id = ?
ORDER BY a.activity_id

-- ---- waiting for work and time skipping ------------------------------------------------------

-- name: workflow_work_available
SELECT 1 FROM inbox i JOIN runs r ON r.id = i.run
WHERE i.queue IN ({queues}) AND {claimable} LIMIT 1

-- name: next_inbox_time
-- (Below 1e13: a terminated run's mark, see keep_closed, is no work.)
SELECT MIN(visible_at) FROM inbox WHERE queue IN ({queues}) AND visible_at > ?
  AND visible_at < 1e13

-- name: next_ready_time
SELECT MIN(ready_at) FROM runs WHERE queue IN ({queues}) AND ready_at > ? AND status = 'running'

-- name: next_sticky_time
-- Work left to the worker that has the run cached: ours sticky_wait later.
SELECT MIN(i.visible_at) + ? FROM inbox i JOIN runs r ON r.id = i.run
WHERE i.queue IN ({queues}) AND r.status = 'running' AND r.lease_token IS NULL
  AND r.sticky_worker <> ? AND i.visible_at <= ? AND i.visible_at + ? > ?

-- name: activity_work_available
SELECT 1 FROM activity_tasks a JOIN runs r ON r.id = a.run
WHERE a.queue IN ({queues}) AND a.visible_at <= ? AND a.cancel_requested = 0
  AND r.paused_at IS NULL LIMIT 1

-- name: next_activity_time
SELECT MIN(visible_at) FROM activity_tasks
WHERE queue IN ({queues}) AND visible_at > ? AND cancel_requested = 0

-- name: next_visible_inbox
SELECT MIN(visible_at) FROM inbox WHERE visible_at > ? AND visible_at < 1e13

-- name: next_visible_ready
SELECT MIN(ready_at) FROM runs WHERE ready_at > ? AND status = 'running'

-- name: next_visible_activity
SELECT MIN(visible_at) FROM activity_tasks
WHERE lease_token IS NULL AND visible_at > ? AND cancel_requested = 0

-- name: next_visible_lease
-- When a lease on pending work runs out: the work of a worker that vanished holding it
-- becomes claimable then.
SELECT MIN(t) FROM (
    SELECT r.lease_expires_at AS t FROM runs r
    WHERE r.status = 'running' AND r.lease_expires_at IS NOT NULL
      AND EXISTS (SELECT 1 FROM inbox i WHERE i.run = r.id)
    UNION ALL
    SELECT lease_expires_at FROM activity_tasks WHERE lease_expires_at IS NOT NULL
) WHERE t > ?

-- ---- schedules (ostinato._schedules; every write is a compare-and-set on version) ---------

-- name: create_schedule
INSERT INTO schedules (schedule_id, workflow_name, queue, args, spec, state, paused,
                       next_fire_at, version, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
ON CONFLICT (schedule_id) DO NOTHING

-- name: get_schedule
SELECT schedule_id, workflow_name, queue, args, spec, state, paused, next_fire_at, version,
       created_at, updated_at
FROM schedules WHERE schedule_id = ?

-- name: list_schedules
SELECT schedule_id, workflow_name, queue, args, spec, state, paused, next_fire_at, version,
       created_at, updated_at
FROM schedules WHERE schedule_id > ? ORDER BY schedule_id LIMIT ?

-- name: update_schedule
UPDATE schedules
SET queue = ?, args = ?, spec = ?, state = ?, paused = ?, next_fire_at = ?,
    version = version + 1, updated_at = ?
WHERE schedule_id = ? AND version = ?

-- name: delete_schedule
DELETE FROM schedules WHERE schedule_id = ?

-- name: due_schedules
SELECT schedule_id, workflow_name, queue, args, spec, state, paused, next_fire_at, version,
       created_at, updated_at
FROM schedules WHERE next_fire_at <= ? AND queue IN ({queues})
ORDER BY next_fire_at, schedule_id LIMIT ?

-- name: next_schedule_fire
SELECT MIN(next_fire_at) FROM schedules WHERE queue IN ({queues})

-- name: next_visible_schedule
-- Due schedules too (not only later ones): a time-skipping driver must not move the clock
-- past a fire a worker has yet to take.
SELECT MIN(next_fire_at) FROM schedules WHERE ? IS NOT NULL

-- ---- stats (dashboards: Backend.stats) ---------------------------------------------------

-- name: stats_runs
-- Latest run of each instance, counted by workflow name, status, blocked- and paused-ness.
SELECT r.workflow_name, r.status, r.blocked_reason IS NOT NULL, COUNT(*),
       r.status = 'running' AND r.paused_at IS NOT NULL
FROM instances i JOIN runs r ON r.id = i.latest_run
GROUP BY 1, 2, 3, 5 ORDER BY 1, 2, 3, 5

-- name: stats_workflow_backlog
-- Runs with claimable work per queue, and since when the oldest has been claimable
-- (stickiness aside: any worker may take these runs, if not at once).
SELECT queue, COUNT(*), MIN(since) FROM (
    SELECT r.queue AS queue, MAX(MIN(i.visible_at), COALESCE(r.ready_at, 0)) AS since
    FROM inbox i JOIN runs r ON r.id = i.run
    WHERE {claimable} GROUP BY r.id
) GROUP BY queue

-- name: stats_activity_backlog
SELECT a.queue, COUNT(*), MIN(a.visible_at) FROM activity_tasks a JOIN runs r ON r.id = a.run
WHERE a.visible_at <= ? AND a.cancel_requested = 0 AND r.paused_at IS NULL GROUP BY a.queue

-- ---- hooks (ostinato.hook; the outbox rows are written by a trigger, migration 0005) -------

-- name: subscribe_hooks
INSERT INTO hook_subscriptions (queue, subscribed_until) VALUES (?, ?)
ON CONFLICT (queue) DO UPDATE
SET subscribed_until = max(subscribed_until, excluded.subscribed_until)

-- name: claimable_hook_pairs
-- (delivery, hook) pairs never attempted, or pending with their retry time come and no live
-- lease; hooks and queues are JSON arrays.
SELECT d.delivery_id, h.value
FROM hook_deliveries d
JOIN json_each(?) h
LEFT JOIN hook_attempts a ON a.delivery_id = d.delivery_id AND a.hook = h.value
WHERE d.queue IN (SELECT value FROM json_each(?))
  AND (a.delivery_id IS NULL
       OR (a.state = 'pending' AND a.visible_at <= ?
           AND (a.lease_expires_at IS NULL OR a.lease_expires_at <= ?)))
ORDER BY d.seq, h.key
LIMIT ?

-- name: claim_hook_pair
INSERT INTO hook_attempts (delivery_id, hook, attempts, visible_at, lease_token,
                           lease_expires_at)
VALUES (?, ?, 1, ?, ?, ?)
ON CONFLICT (delivery_id, hook) DO UPDATE
SET attempts = attempts + 1, lease_token = excluded.lease_token,
    lease_expires_at = excluded.lease_expires_at
RETURNING attempts

-- name: hook_delivery_row
SELECT instance_id, run_id, workflow_name, queue, status, occurred_at, result
FROM hook_deliveries WHERE delivery_id = ?

-- name: hook_pair_delivered
UPDATE hook_attempts SET state = 'delivered', lease_token = NULL, lease_expires_at = NULL
WHERE delivery_id = ? AND hook = ? AND lease_token = ? AND state = 'pending'

-- name: delete_delivered_hook_delivery
-- Once each hook (a JSON array of n names) of the finishing worker was delivered.
DELETE FROM hook_deliveries
WHERE delivery_id = ?
  AND (SELECT count(*) FROM hook_attempts
       WHERE delivery_id = ? AND state = 'delivered'
         AND hook IN (SELECT value FROM json_each(?))) = ?

-- name: delete_hook_attempts
DELETE FROM hook_attempts WHERE delivery_id = ?

-- name: hook_pair_failed
-- retry_at NULL: given up for good (kept for list_hook_failures).
UPDATE hook_attempts
SET lease_token = NULL, lease_expires_at = NULL, last_error = ?,
    visible_at = coalesce(?, visible_at),
    state = CASE WHEN ? IS NULL THEN 'gave_up' ELSE 'pending' END
WHERE delivery_id = ? AND hook = ? AND lease_token = ? AND state = 'pending'

-- name: list_hook_failures
SELECT d.delivery_id, a.hook, d.instance_id, d.run_id, d.workflow_name, d.status,
       d.occurred_at, a.attempts, a.last_error
FROM hook_attempts a JOIN hook_deliveries d ON d.delivery_id = a.delivery_id
WHERE a.state = 'gave_up'
ORDER BY d.seq DESC, a.hook
LIMIT ?

-- name: purge_given_up_hook_deliveries
-- At most limit deliveries older than the given time with a pair given up, oldest first.
-- Parameters: before, limit.
SELECT d.delivery_id FROM hook_deliveries d
WHERE d.occurred_at < ?
  AND EXISTS (SELECT 1 FROM hook_attempts a
              WHERE a.delivery_id = d.delivery_id AND a.state = 'gave_up')
ORDER BY d.seq LIMIT ?

-- name: delete_hook_delivery
DELETE FROM hook_deliveries WHERE delivery_id = ?

-- name: delete_orphan_hook_attempts
-- Pairs whose delivery is gone (none are left by this version; older ones may be).
DELETE FROM hook_attempts
WHERE NOT EXISTS (SELECT 1 FROM hook_deliveries d WHERE d.delivery_id = hook_attempts.delivery_id)

-- ---- retention (_sqlite_retention.py) --------------------------------------------------------

-- name: closed_instances
-- Instances whose latest run has one of the statuses (a JSON array) and closed before the
-- given time, oldest first. Parameters: closed_before, statuses, limit.
SELECT i.instance_id FROM runs r JOIN instances i ON i.latest_run = r.id
WHERE r.closed_at IS NOT NULL AND r.closed_at < ?
  AND r.status IN (SELECT value FROM json_each(?))
ORDER BY r.closed_at, r.id LIMIT ?

-- name: closed_runs_to_redact
-- Parameters: closed_before, limit (the partial index runs_to_redact, migration 0010).
SELECT instance_id, run_id FROM runs
WHERE closed_at IS NOT NULL AND redacted_at IS NULL AND closed_at < ?
ORDER BY closed_at, id LIMIT ?

-- name: claim_sweep
-- Parameters: name, holder, expires_at, now. Changes no row while another holder's lease runs.
INSERT INTO sweeps (name, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE sweeps.holder = excluded.holder OR sweeps.expires_at <= ?

-- name: release_sweep
DELETE FROM sweeps WHERE name = ? AND holder = ?

-- name: redact_find_run
SELECT id, status FROM runs WHERE instance_id = ? AND run_id = ?

-- name: redact_history_seqs
SELECT seq FROM history WHERE run = ? ORDER BY seq

-- name: redact_history_event
UPDATE history SET event = ? WHERE run = ? AND seq = ?

-- name: redact_run_row
UPDATE runs SET result = NULL, blocked_reason = NULL, redacted_at = ? WHERE id = ?

-- name: redact_run_hook_deliveries
-- The run's result, failure or pause reason copied into its hook deliveries, and what its
-- hooks said when they failed (their errors may quote it).
UPDATE hook_deliveries SET result = NULL
WHERE instance_id = (SELECT instance_id FROM runs WHERE id = ?)
  AND run_id = (SELECT run_id FROM runs WHERE id = ?)

-- name: redact_run_hook_errors
UPDATE hook_attempts SET last_error = NULL
WHERE delivery_id IN (SELECT d.delivery_id FROM hook_deliveries d JOIN runs r
                      ON r.instance_id = d.instance_id AND r.run_id = d.run_id WHERE r.id = ?)

-- name: redact_run_vars
DELETE FROM vars WHERE run = ?

-- name: redact_run_inbox
DELETE FROM inbox WHERE run = ?

-- name: redact_run_activities
DELETE FROM activity_tasks WHERE run = ?
