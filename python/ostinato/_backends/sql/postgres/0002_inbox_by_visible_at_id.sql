-- Claims walk the visible inbox in (visible_at, id) order and stop after enough runs; the
-- id makes the order total (events of one instant are taken in arrival order) without a
-- sort. This index replaces the one on visible_at alone, of which it is a prefix.
CREATE INDEX inbox_by_visible_at_id ON {schema}.inbox (visible_at, id);
DROP INDEX {schema}.inbox_by_visible_at;
