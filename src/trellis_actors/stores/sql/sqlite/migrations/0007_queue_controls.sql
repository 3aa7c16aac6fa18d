-- 0007: queue controls and limits per task type. A paused queue's tasks are not claimed.
-- Starts of rate-limited types are logged (and pruned as they leave the window); a
-- partial index counts what a type holds under leases.

CREATE TABLE trellis_queues (
    name TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0,
    paused_at REAL,
    updated_at REAL NOT NULL
);

CREATE TABLE trellis_type_starts (
    type TEXT NOT NULL,
    at REAL NOT NULL
);

CREATE INDEX trellis_type_starts_at ON trellis_type_starts (type, at);

CREATE INDEX trellis_tasks_held ON trellis_tasks (type, status)
    WHERE lease_owner IS NOT NULL;
