-- 0001: tasks, their events, and the indexes that claim, list, count and prune them.

CREATE TABLE trellis_tasks (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT,
    status TEXT NOT NULL CHECK (status IN (
        'pending', 'queued', 'running', 'completed', 'retrying', 'failed', 'dead', 'cancelled'
    )),
    priority INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at REAL NOT NULL,
    timeout REAL,
    idempotency_key TEXT,
    dead_letter INTEGER NOT NULL,
    created_at REAL NOT NULL,
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL NOT NULL,
    result TEXT,
    error TEXT,
    progress REAL,
    progress_message TEXT,
    lease_owner TEXT,
    lease_expires_at REAL,
    schedule_id TEXT,
    trace_context TEXT
);

-- Claiming: the best queued task of one queue, or of all queues, is the first index entry.
CREATE INDEX trellis_tasks_claim ON trellis_tasks (queue, priority DESC, queued_at, id)
    WHERE status = 'queued';
CREATE INDEX trellis_tasks_claim_any ON trellis_tasks (priority DESC, queued_at, id)
    WHERE status = 'queued';
-- Delayed and retrying work, by due time (promote_due, next_due_at).
CREATE INDEX trellis_tasks_due ON trellis_tasks (run_at, id)
    WHERE status IN ('pending', 'retrying');
-- Expired leases (recover_expired).
CREATE INDEX trellis_tasks_lease ON trellis_tasks (lease_expires_at)
    WHERE status = 'running';
-- Listing newest first: by id alone, or by status, queue or type first.
CREATE INDEX trellis_tasks_status ON trellis_tasks (status, id);
CREATE INDEX trellis_tasks_queue ON trellis_tasks (queue, id);
CREATE INDEX trellis_tasks_type ON trellis_tasks (type, id);
-- Counts by (queue, status): one scan of this covering index, no table rows read.
CREATE INDEX trellis_tasks_counts ON trellis_tasks (queue, status);
-- Retention (prune).
CREATE INDEX trellis_tasks_finished ON trellis_tasks (status, finished_at)
    WHERE status IN ('completed', 'dead');
-- At most one task per idempotency key.
CREATE UNIQUE INDEX trellis_tasks_idempotency ON trellis_tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Every transition, in order. No foreign key: events are written and pruned with their
-- task in the same transaction, and a key check on every insert buys nothing more.
CREATE TABLE trellis_events (
    id INTEGER PRIMARY KEY,  -- rowid: a new event always sorts after its task's older ones
    task_id TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    at REAL NOT NULL,
    attempt INTEGER NOT NULL,
    detail TEXT
);

CREATE INDEX trellis_events_task ON trellis_events (task_id, id);
