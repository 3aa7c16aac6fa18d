-- 0007: queue controls and cluster-wide limits per task type. A paused queue's tasks are
-- not claimed by any node. Starts of rate-limited types are logged (and pruned as they
-- leave the window); a partial index counts what a type holds under leases.

CREATE TABLE trellis_queues (
    name text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false,
    paused_at double precision,
    updated_at double precision NOT NULL
);

CREATE TABLE trellis_type_starts (
    type text NOT NULL,
    at double precision NOT NULL
);

CREATE INDEX trellis_type_starts_at ON trellis_type_starts (type, at);

CREATE INDEX trellis_tasks_held ON trellis_tasks (type, status)
    WHERE lease_owner IS NOT NULL;
