-- 0009: durable workflows. Tasks may be "waiting" (a workflow between continuations)
-- and name the workflow they are a step of (parent_id); workflows' timers share the due
-- index; each workflow's history and the signals sent to it get tables of their own.
--
-- SQLite cannot change a CHECK constraint in place: the tasks table is rebuilt (SQLite's
-- own recipe: new table, copy, drop, same name), its indexes made again.

DROP INDEX trellis_tasks_claim;
DROP INDEX trellis_tasks_claim_any;
DROP INDEX trellis_tasks_due;
DROP INDEX trellis_tasks_lease;
DROP INDEX trellis_tasks_status;
DROP INDEX trellis_tasks_queue;
DROP INDEX trellis_tasks_type;
DROP INDEX trellis_tasks_counts;
DROP INDEX trellis_tasks_finished;
DROP INDEX trellis_tasks_idempotency;
DROP INDEX trellis_tasks_held;
ALTER TABLE trellis_tasks RENAME TO trellis_tasks_before_0008;

CREATE TABLE trellis_tasks (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    queue TEXT NOT NULL,
    payload TEXT,
    status TEXT NOT NULL CHECK (status IN (
        'pending', 'queued', 'running', 'completed', 'retrying', 'failed', 'dead', 'cancelled',
        'waiting'
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
    trace_context TEXT,
    node TEXT,  -- where the latest attempt ran: its node (lease owner id) and worker
    worker TEXT,
    parent_id TEXT  -- the workflow this task is a step of
);

INSERT INTO trellis_tasks (
    id, type, queue, payload, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    result, error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker
)
SELECT
    id, type, queue, payload, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    result, error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker
FROM trellis_tasks_before_0008;

DROP TABLE trellis_tasks_before_0008;

CREATE INDEX trellis_tasks_claim ON trellis_tasks (queue, priority DESC, queued_at, id)
    WHERE status = 'queued' AND lease_owner IS NULL;
CREATE INDEX trellis_tasks_claim_any ON trellis_tasks (priority DESC, queued_at, id)
    WHERE status = 'queued' AND lease_owner IS NULL;
CREATE INDEX trellis_tasks_due ON trellis_tasks (run_at, id)
    WHERE status IN ('pending', 'retrying', 'waiting');
CREATE INDEX trellis_tasks_lease ON trellis_tasks (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
CREATE INDEX trellis_tasks_status ON trellis_tasks (status, id);
CREATE INDEX trellis_tasks_queue ON trellis_tasks (queue, id);
CREATE INDEX trellis_tasks_type ON trellis_tasks (type, id);
CREATE INDEX trellis_tasks_counts ON trellis_tasks (queue, status);
CREATE INDEX trellis_tasks_finished ON trellis_tasks (status, finished_at)
    WHERE status IN ('completed', 'failed', 'dead', 'cancelled');
CREATE UNIQUE INDEX trellis_tasks_idempotency ON trellis_tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX trellis_tasks_held ON trellis_tasks (type, status)
    WHERE lease_owner IS NOT NULL;
CREATE INDEX trellis_tasks_parent ON trellis_tasks (parent_id, id)
    WHERE parent_id IS NOT NULL;

-- What each workflow asked for, in order (see trellis_actors.workflows): steps, sleeps,
-- signal waits and recorded values; outcome is NULL while pending.
CREATE TABLE trellis_workflow_history (
    workflow_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('step', 'sleep', 'signal', 'now', 'random', 'uuid')),
    name TEXT,
    step_id TEXT,
    wake_at REAL,
    value TEXT,
    error TEXT,
    outcome TEXT,
    recorded_at REAL NOT NULL,
    resolved_at REAL,
    PRIMARY KEY (workflow_id, seq)
);

CREATE INDEX trellis_workflow_history_step ON trellis_workflow_history (workflow_id, step_id)
    WHERE step_id IS NOT NULL;

-- Signals sent to workflows, kept until received (consumed_by: the history entry).
CREATE TABLE trellis_workflow_signals (
    id INTEGER PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    name TEXT NOT NULL,
    payload TEXT,
    sent_at REAL NOT NULL,
    consumed_by INTEGER
);

CREATE INDEX trellis_workflow_signals_workflow ON trellis_workflow_signals (workflow_id, id);
