-- The SQLite schema at the latest migration. A fresh database gets this file; an existing
-- one gets the migrations it has not seen. tests/integration/stores/test_migrations.py
-- checks that both roads end in the same schema.
--
-- Times are seconds since the epoch (REAL), ids are UUIDv7 text (their text order is their
-- time order). JSON columns are TEXT: a column type named JSON would get NUMERIC affinity
-- and turn the JSON text '12' into the integer 12.

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

-- Claiming: the best queued task of one queue, or of all queues, is the first index entry.
-- A claimed task stays queued, under a lease, until its handler starts; claims skip it.
CREATE INDEX trellis_tasks_claim ON trellis_tasks (queue, priority DESC, queued_at, id)
    WHERE status = 'queued' AND lease_owner IS NULL;
CREATE INDEX trellis_tasks_claim_any ON trellis_tasks (priority DESC, queued_at, id)
    WHERE status = 'queued' AND lease_owner IS NULL;
-- Delayed and retrying work and workflows' timers, by due time (promote_due, next_due_at).
CREATE INDEX trellis_tasks_due ON trellis_tasks (run_at, id)
    WHERE status IN ('pending', 'retrying', 'waiting');
-- Expired leases (recover_expired): of claimed and of running tasks.
CREATE INDEX trellis_tasks_lease ON trellis_tasks (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
-- Listing newest first: by id alone, or by status, queue or type first.
CREATE INDEX trellis_tasks_status ON trellis_tasks (status, id);
CREATE INDEX trellis_tasks_queue ON trellis_tasks (queue, id);
CREATE INDEX trellis_tasks_type ON trellis_tasks (type, id);
-- Counts by (queue, status): one scan of this covering index, no table rows read.
CREATE INDEX trellis_tasks_counts ON trellis_tasks (queue, status);
-- Retention (prune).
CREATE INDEX trellis_tasks_finished ON trellis_tasks (status, finished_at)
    WHERE status IN ('completed', 'failed', 'dead', 'cancelled');
-- At most one task per idempotency key.
CREATE UNIQUE INDEX trellis_tasks_idempotency ON trellis_tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Every transition, in order. No foreign key: events are written and pruned with their
-- task in the same transaction, and a key check on every insert buys nothing more.
CREATE TABLE trellis_events (
    -- AUTOINCREMENT: an id is never taken again, even once the newest events are
    -- deleted, so a reader resuming after an id misses nothing written later.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    at REAL NOT NULL,
    attempt INTEGER NOT NULL,
    detail TEXT,
    node TEXT,  -- on moves to and from running: where that attempt ran
    worker TEXT
);

CREATE INDEX trellis_events_task ON trellis_events (task_id, id);

-- Schedules: what fires when. Names are unique; ids are UUIDv7 text.
CREATE TABLE trellis_schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    task_type TEXT NOT NULL,
    payload TEXT,
    queue TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    every REAL,
    cron TEXT,
    timezone TEXT,
    at REAL,
    paused INTEGER NOT NULL DEFAULT 0,
    misfire TEXT NOT NULL CHECK (misfire IN ('skip', 'run_once')),
    anchor REAL NOT NULL,
    next_run_at REAL,
    last_run_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    declared INTEGER NOT NULL DEFAULT 0
);

-- Web UI login sessions: the key is the sha256 of the session id, never the id itself.
CREATE TABLE trellis_sessions (
    key TEXT PRIMARY KEY,
    token_name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at REAL NOT NULL,
    seen_at REAL NOT NULL,
    expires_at REAL NOT NULL
);

CREATE INDEX trellis_sessions_seen ON trellis_sessions (seen_at);

-- Nodes: each writes its row at every heartbeat (see migration 0006).
CREATE TABLE trellis_nodes (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL,
    started_at REAL NOT NULL,
    seen_at REAL NOT NULL,
    heartbeat REAL NOT NULL,
    workers INTEGER NOT NULL,
    busy INTEGER NOT NULL,
    processes INTEGER NOT NULL,
    queues TEXT,
    draining INTEGER NOT NULL,
    activity TEXT NOT NULL
);

-- Queue controls and limits per task type (see migration 0007).
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

-- A workflow's steps.
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
