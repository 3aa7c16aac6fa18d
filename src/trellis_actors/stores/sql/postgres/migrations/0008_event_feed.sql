-- 0008: the cluster-wide event feed. Each event keeps the transaction that wrote it, so
-- that a reader takes events in an order no later commit can change (see queries.sql).
-- Events written before this migration count as of one old transaction (0), read first,
-- in id order; adding the column with a constant default rewrites no rows.

ALTER TABLE trellis_events ADD COLUMN tx xid8 NOT NULL DEFAULT '0';
ALTER TABLE trellis_events ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX trellis_events_feed ON trellis_events (tx, id);
