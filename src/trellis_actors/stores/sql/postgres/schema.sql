-- The PostgreSQL schema at the latest migration. A fresh database gets this file; an
-- existing one gets the migrations it has not seen. tests/integration/stores/
-- test_migrations.py checks that both roads end in the same catalog.
--
-- Times are seconds since the epoch (double precision): they round-trip Python floats
-- exactly, which the store protocol relies on (next_due_at returns a stored run_at).
-- Ids are UUIDv7, so the primary key is also creation order.

CREATE TABLE trellis_tasks (
    id uuid PRIMARY KEY,
    type text NOT NULL,
    queue text NOT NULL,
    payload jsonb,
    status text NOT NULL CHECK (status IN (
        'pending', 'queued', 'running', 'completed', 'retrying', 'failed', 'dead', 'cancelled',
        'waiting'
    )),
    priority integer NOT NULL DEFAULT 0,
    attempt integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    run_at double precision NOT NULL,
    timeout double precision,
    idempotency_key text,
    dead_letter boolean NOT NULL,
    created_at double precision NOT NULL,
    queued_at double precision,
    started_at double precision,
    finished_at double precision,
    updated_at double precision NOT NULL,
    result jsonb,
    error jsonb,
    progress double precision,
    progress_message text,
    lease_owner text,
    lease_expires_at double precision,
    schedule_id text,
    trace_context jsonb,
    node text,  -- where the latest attempt ran: its node (lease owner id) and worker
    worker text,
    parent_id uuid  -- the workflow this task is a step of
);

-- Active work lives in small partial indexes, so claiming, promoting and recovering stay
-- fast however many finished tasks the table holds.
-- Claiming from one queue (or a few) and from all queues: an ordered index scan, LIMIT n,
-- FOR UPDATE SKIP LOCKED.
-- A claimed task stays queued, under a lease, until its handler starts; claims skip it.
CREATE INDEX trellis_tasks_claim ON trellis_tasks (queue, priority DESC, queued_at, id)
    WHERE status = 'queued' AND lease_owner IS NULL;
-- The all-queues index orders by an expression that only the all-queues claim asks for,
-- so that a one-queue claim never walks it past other queues' tasks (migration 0010).
CREATE INDEX trellis_tasks_claim_any ON trellis_tasks ((-priority), queued_at, id)
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
-- Counts are a plain GROUP BY queue, status, answered by an index-only scan of this
-- index: no counter rows that every claim and finish would update (and contend on).
-- Counting a million tasks this way takes tens of milliseconds; the UI and /metrics
-- ask every few seconds, not per task.
CREATE INDEX trellis_tasks_counts ON trellis_tasks (queue, status);
-- Retention (prune).
CREATE INDEX trellis_tasks_finished ON trellis_tasks (status, finished_at)
    WHERE status IN ('completed', 'failed', 'dead', 'cancelled');
-- At most one task per idempotency key; tasks without a key take no room here.
CREATE UNIQUE INDEX trellis_tasks_idempotency ON trellis_tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Every transition, in order. No foreign key: events are written and pruned with their
-- task in the same transaction, and a key check on every insert buys nothing more.
CREATE TABLE trellis_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id uuid NOT NULL,
    from_status text,
    to_status text NOT NULL,
    at double precision NOT NULL,
    attempt integer NOT NULL,
    detail text,
    node text,  -- on moves to and from running: where that attempt ran
    worker text,
    -- The transaction that wrote the event: the feed reads in (tx, id) order, only
    -- events of transactions older than any still in flight (see queries.sql).
    tx xid8 NOT NULL DEFAULT pg_current_xact_id()
);

CREATE INDEX trellis_events_task ON trellis_events (task_id, id);
CREATE INDEX trellis_events_feed ON trellis_events (tx, id);

-- Schedules: what fires when. Names are unique. Few rows: text ids, no extra indexes.
CREATE TABLE trellis_schedules (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    task_type text NOT NULL,
    payload jsonb,
    queue text,
    priority integer NOT NULL DEFAULT 0,
    every double precision,
    cron text,
    timezone text,
    at double precision,
    paused boolean NOT NULL DEFAULT false,
    misfire text NOT NULL CHECK (misfire IN ('skip', 'run_once')),
    anchor double precision NOT NULL,
    next_run_at double precision,
    last_run_at double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    declared boolean NOT NULL DEFAULT false
);

-- Web UI login sessions: the key is the sha256 of the session id, never the id itself.
CREATE TABLE trellis_sessions (
    key text PRIMARY KEY,
    token_name text NOT NULL,
    scopes text NOT NULL,
    created_at double precision NOT NULL,
    seen_at double precision NOT NULL,
    expires_at double precision NOT NULL
);

CREATE INDEX trellis_sessions_seen ON trellis_sessions (seen_at);

-- Nodes: each writes its row at every heartbeat (see migration 0006).
CREATE TABLE trellis_nodes (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    started_at double precision NOT NULL,
    seen_at double precision NOT NULL,
    heartbeat double precision NOT NULL,
    workers integer NOT NULL,
    busy integer NOT NULL,
    processes integer NOT NULL,
    queues jsonb,
    draining boolean NOT NULL,
    activity jsonb NOT NULL
);

-- Queue controls and limits per task type (see migration 0007).
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

-- A workflow's steps.
CREATE INDEX trellis_tasks_parent ON trellis_tasks (parent_id, id)
    WHERE parent_id IS NOT NULL;

-- What each workflow asked for, in order (see trellis_actors.workflows): steps, sleeps,
-- signal waits and recorded values; outcome is NULL while pending.
CREATE TABLE trellis_workflow_history (
    workflow_id uuid NOT NULL,
    seq integer NOT NULL,
    kind text NOT NULL CHECK (kind IN ('step', 'sleep', 'signal', 'now', 'random', 'uuid')),
    name text,
    step_id uuid,
    wake_at double precision,
    value jsonb,
    error jsonb,
    outcome text,
    recorded_at double precision NOT NULL,
    resolved_at double precision,
    PRIMARY KEY (workflow_id, seq)
);

CREATE INDEX trellis_workflow_history_step ON trellis_workflow_history (workflow_id, step_id)
    WHERE step_id IS NOT NULL;

-- Signals sent to workflows, kept until received (consumed_by: the history entry).
CREATE TABLE trellis_workflow_signals (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id uuid NOT NULL,
    name text NOT NULL,
    payload jsonb,
    sent_at double precision NOT NULL,
    consumed_by integer
);

CREATE INDEX trellis_workflow_signals_workflow ON trellis_workflow_signals (workflow_id, id);
