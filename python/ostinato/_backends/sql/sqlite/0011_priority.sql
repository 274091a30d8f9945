-- Priority (docs/queues.md): a run's priority orders its workflow tasks, an activity task's
-- its claims. Claims take ready work by claim rank, visible_at - priority * 60 (one level is
-- worth 60 s of waiting: _queue_limits.PRIORITY_AGING), then by id. The activity claim walks
-- this index in that order (no sort of a backlog); at priority 0 the rank is visible_at, the
-- order of before. activity_tasks_claim stays, for the next visible time of a queue.
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE activity_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE INDEX activity_tasks_by_rank ON activity_tasks (queue, (visible_at - priority * 60), id);
