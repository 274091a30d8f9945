-- Retention (ostinato._retention): one lease row per sweep, claimed by compare-and-set, and
-- an index to find the oldest closed runs without scanning every run.
CREATE TABLE sweeps (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX runs_closed ON runs (closed_at) WHERE closed_at IS NOT NULL;
