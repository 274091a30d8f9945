-- Tags of a run (docs/search.md): a jsonb object of str to str, empty when it has none.
-- Listing by tags (`tags @> ...`) walks the GIN index of the latest runs'
-- tags, so it stays fast among millions of runs; listing by queue has its index too.
ALTER TABLE {schema}.runs ADD COLUMN tags jsonb NOT NULL DEFAULT jsonb_build_object();
CREATE INDEX runs_latest_by_tags ON {schema}.runs USING gin (tags jsonb_path_ops)
    WHERE is_latest;
CREATE INDEX runs_latest_by_queue ON {schema}.runs (queue, ordinal) WHERE is_latest;
