-- Tags of a run (docs/search.md): a JSON object of str to str, '{}' when it has none.
ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
