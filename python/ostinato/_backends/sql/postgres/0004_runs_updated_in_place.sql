-- Every workflow task writes its run's row twice (claim, commit), changing the lease columns.
-- While a partial index's condition named those columns, each such write added an entry to
-- every one of the table's indexes. Out of every index, and with room left on each page
-- (fillfactor), PostgreSQL rewrites the row in place (a HOT update) and touches no index.
-- Delayed runs (start delay, back-off) stay indexed, for wake-ups at their ready time; a
-- lease that expires while nobody is looking is noticed at the workers' next poll.
DROP INDEX {schema}.runs_open_not_ready;
CREATE INDEX runs_open_delayed ON {schema}.runs (ready_at)
    WHERE status = 'running' AND ready_at IS NOT NULL;
ALTER TABLE {schema}.runs SET (fillfactor = 80);
