-- Retention (ostinato._retention): one lease row per sweep, claimed by compare-and-set, and
-- an index to find the oldest closed latest runs without scanning every run.
CREATE TABLE {schema}.sweeps (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at float8 NOT NULL
);
CREATE INDEX runs_latest_closed ON {schema}.runs (closed_at)
    WHERE is_latest AND closed_at IS NOT NULL;
