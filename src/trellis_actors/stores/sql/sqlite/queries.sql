-- Named queries of the SQLite store, loaded once by trellis_actors.stores._sql.
-- Parameters use sqlite3's :name style. Lists of ids travel as one JSON array (:ids) read
-- with json_each, so no statement is ever built from a list. The multi-row writes take
-- positional "?" parameters: their {rows} becomes 1, 2, 4, 16, 64 or 256 groups of them
-- (stores/sqlite.py), never anything but placeholders, or NULL for a column that is None
-- in every row of the group (binding a None costs more). Without statistics SQLite prefers
-- the (status, id) index and sorts, so queries over active work name the partial index
-- built for them (INDEXED BY fails loudly if it ever stops applying).

-- name: ping
SELECT 1;

-- name: create_migrations
CREATE TABLE IF NOT EXISTS trellis_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at REAL NOT NULL
);

-- name: applied_migrations
SELECT version FROM trellis_migrations ORDER BY version;

-- name: record_migration
INSERT INTO trellis_migrations (version, name, applied_at) VALUES (:version, :name, :applied_at);

-- name: insert_task
INSERT INTO trellis_tasks (
    id, type, queue, payload, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    result, error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, parent_id
) VALUES (
    :id, :type, :queue, :payload, :status, :priority, :attempt, :max_attempts, :run_at, :timeout,
    :idempotency_key, :dead_letter, :created_at, :queued_at, :started_at, :finished_at,
    :updated_at, :result, :error, :progress, :progress_message, :lease_owner,
    :lease_expires_at, :schedule_id, :trace_context, :parent_id
)
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;

-- name: task_by_key
SELECT * FROM trellis_tasks WHERE idempotency_key = :key;

-- name: insert_tasks
-- Many new tasks (none with an idempotency key) in one statement: {rows} stands for as
-- many "(?, …)" groups as rows, one "?" per column, in this order. One statement for many
-- rows, parameters bound by position, costs a quarter less per row than a statement per
-- row with named parameters.
INSERT INTO trellis_tasks (
    id, type, queue, payload, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    result, error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, parent_id
) VALUES {rows};

-- name: update_tasks
-- Many changed tasks in one statement; {rows} as for insert_tasks.
WITH u (
    id, status, attempt, run_at, queued_at, started_at, finished_at, updated_at, result,
    error, progress, progress_message, lease_owner, lease_expires_at, node, worker
) AS (VALUES {rows})
UPDATE trellis_tasks SET
    status = u.status, attempt = u.attempt, run_at = u.run_at, queued_at = u.queued_at,
    started_at = u.started_at, finished_at = u.finished_at, updated_at = u.updated_at,
    result = u.result, error = u.error, progress = u.progress,
    progress_message = u.progress_message, lease_owner = u.lease_owner,
    lease_expires_at = u.lease_expires_at, node = u.node, worker = u.worker
FROM u WHERE trellis_tasks.id = u.id;

-- name: insert_events
-- Many events in one statement, in history order; {rows} as for insert_tasks.
INSERT INTO trellis_events (
    task_id, from_status, to_status, at, attempt, detail, node, worker
) VALUES {rows};

-- name: get_task
SELECT * FROM trellis_tasks WHERE id = :id;

-- name: lock_task
-- Every writing call runs under BEGIN IMMEDIATE, which already excludes other writers.
SELECT * FROM trellis_tasks WHERE id = :id;

-- name: lease_states
-- What decides whether a start or an outcome still applies (finish), a held row's lease,
-- and what may change while a task runs (its progress, and the lease's expiry).
SELECT id, status, lease_owner, attempt, progress, progress_message, updated_at,
    lease_expires_at
FROM trellis_tasks
WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN ('queued', 'running')
    AND lease_owner IS NOT NULL;

-- name: lock_tasks
SELECT * FROM trellis_tasks WHERE id IN (SELECT value FROM json_each(:ids));

-- name: due_tasks
SELECT * FROM trellis_tasks INDEXED BY trellis_tasks_due
WHERE status IN ('pending', 'retrying', 'waiting') AND run_at <= :now
ORDER BY run_at, id
LIMIT :limit;

-- name: next_due_at
-- A workflow waiting with no timer has run_at 9999-12-31T23:59:59Z (decisions.NEVER).
SELECT min(run_at) AS run_at FROM trellis_tasks INDEXED BY trellis_tasks_due
WHERE status IN ('pending', 'retrying', 'waiting') AND run_at < 253402300799.0;

-- name: claim_queue
SELECT * FROM trellis_tasks INDEXED BY trellis_tasks_claim
WHERE status = 'queued' AND lease_owner IS NULL AND queue = :queue
  AND type NOT IN (SELECT value FROM json_each(:exclude))
  AND queue NOT IN (SELECT name FROM trellis_queues WHERE paused)
ORDER BY priority DESC, queued_at, id
LIMIT :limit;

-- name: claim_any
SELECT * FROM trellis_tasks INDEXED BY trellis_tasks_claim_any
WHERE status = 'queued' AND lease_owner IS NULL
  AND type NOT IN (SELECT value FROM json_each(:exclude))
  AND queue NOT IN (SELECT name FROM trellis_queues WHERE paused)
ORDER BY priority DESC, queued_at, id
LIMIT :limit;

-- name: heartbeat
UPDATE trellis_tasks SET lease_expires_at = :lease_until
WHERE id IN (SELECT value FROM json_each(:ids))
  AND status IN ('queued', 'running') AND lease_owner = :owner
RETURNING id;

-- name: expired_leases
SELECT * FROM trellis_tasks INDEXED BY trellis_tasks_lease
WHERE lease_expires_at IS NOT NULL AND lease_expires_at <= :now
  AND status IN ('queued', 'running')
ORDER BY id;

-- name: set_progress
UPDATE trellis_tasks
SET progress = :fraction, progress_message = :message, updated_at = :now
WHERE id = :id AND status = 'running';

-- name: list_any
-- Listings read summaries: every column but payload and result (which may be a MiB
-- each), and, when a listing includes them, their size, to stop a page in time.
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN :payload THEN coalesce(length(CAST(payload AS BLOB)), 0) ELSE 0 END
    + CASE WHEN :result THEN coalesce(length(CAST(result AS BLOB)), 0) ELSE 0 END AS data_size
FROM trellis_tasks
WHERE id < :before
  AND id >= :id_low AND id <= :id_high
  AND (:schedule_id IS NULL OR schedule_id = :schedule_id)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY id DESC
LIMIT :limit;

-- name: list_by_status
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN :payload THEN coalesce(length(CAST(payload AS BLOB)), 0) ELSE 0 END
    + CASE WHEN :result THEN coalesce(length(CAST(result AS BLOB)), 0) ELSE 0 END AS data_size
FROM trellis_tasks
WHERE status = :status AND id < :before
  AND (:type IS NULL OR type = :type) AND (:queue IS NULL OR queue = :queue)
  AND id >= :id_low AND id <= :id_high
  AND (:schedule_id IS NULL OR schedule_id = :schedule_id)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY id DESC
LIMIT :limit;

-- name: list_by_queue
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN :payload THEN coalesce(length(CAST(payload AS BLOB)), 0) ELSE 0 END
    + CASE WHEN :result THEN coalesce(length(CAST(result AS BLOB)), 0) ELSE 0 END AS data_size
FROM trellis_tasks
WHERE queue = :queue AND id < :before AND (:type IS NULL OR type = :type)
  AND id >= :id_low AND id <= :id_high
  AND (:schedule_id IS NULL OR schedule_id = :schedule_id)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY id DESC
LIMIT :limit;

-- name: list_by_type
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN :payload THEN coalesce(length(CAST(payload AS BLOB)), 0) ELSE 0 END
    + CASE WHEN :result THEN coalesce(length(CAST(result AS BLOB)), 0) ELSE 0 END AS data_size
FROM trellis_tasks
WHERE type = :type AND id < :before
  AND id >= :id_low AND id <= :id_high
  AND (:schedule_id IS NULL OR schedule_id = :schedule_id)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY id DESC
LIMIT :limit;

-- name: list_by_key
-- At most one task has a key (a unique index): the other filters still apply.
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN :payload THEN coalesce(length(CAST(payload AS BLOB)), 0) ELSE 0 END
    + CASE WHEN :result THEN coalesce(length(CAST(result AS BLOB)), 0) ELSE 0 END AS data_size
FROM trellis_tasks
WHERE idempotency_key = :idempotency_key AND id < :before
  AND (:status IS NULL OR status = :status)
  AND (:type IS NULL OR type = :type) AND (:queue IS NULL OR queue = :queue)
  AND id >= :id_low AND id <= :id_high
  AND (:schedule_id IS NULL OR schedule_id = :schedule_id)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY id DESC
LIMIT :limit;

-- name: finished_since
-- Ended tasks of one status (completed or dead) for the UI's charts, the latest first,
-- read in order from the partial index that retention uses (its predicate restated).
SELECT type, status, finished_at, started_at FROM trellis_tasks
WHERE status = :status AND status IN ('completed', 'failed', 'dead', 'cancelled')
  AND finished_at >= :since
ORDER BY finished_at DESC
LIMIT :limit;

-- name: task_data
-- The payloads and results a listing includes, of the tasks that fit in its page.
SELECT id, CASE WHEN :payload THEN payload END AS payload,
    CASE WHEN :result THEN result END AS result
FROM trellis_tasks WHERE id IN (SELECT value FROM json_each(:ids));

-- name: events
SELECT * FROM trellis_events WHERE task_id = :id ORDER BY id;

-- name: events_after
-- Every task's events after one, in id order (one writer at a time: ids commit in
-- order). The event's columns that share a name with the task's are renamed.
SELECT e.id AS event_id, e.task_id, e.from_status, e.to_status, e.at,
    e.attempt AS event_attempt, e.detail, e.node AS event_node, e.worker AS event_worker, t.*
FROM trellis_events e JOIN trellis_tasks t ON t.id = e.task_id
WHERE e.id > :after ORDER BY e.id LIMIT :limit;

-- name: last_event_id
SELECT coalesce(max(id), 0) AS last FROM trellis_events;

-- name: data_version
-- Changes when another connection commits to the file (counts kept in memory are stale).
PRAGMA data_version;

-- name: tables
-- What a producer looks at before it writes to a file: a Trellis database, or empty?
SELECT name FROM sqlite_master WHERE type = 'table';

-- name: counts
SELECT queue, status, count(*) AS n FROM trellis_tasks GROUP BY queue, status;

-- name: prunable
-- Up to :limit tasks of one ended status that finished before :before (retention), oldest
-- first. The repeated IN term lets SQLite use the partial index on ended tasks.
SELECT id FROM trellis_tasks INDEXED BY trellis_tasks_finished
WHERE status IN ('completed', 'failed', 'dead', 'cancelled') AND status = :status
  AND finished_at < :before
ORDER BY finished_at
LIMIT :limit;

-- name: delete_events
DELETE FROM trellis_events WHERE task_id IN (SELECT value FROM json_each(:ids));

-- name: delete_tasks
DELETE FROM trellis_tasks WHERE id IN (SELECT value FROM json_each(:ids));

-- name: bulk_select
-- One chunk of a bulk operation: the tasks its filter takes in, by id, between the ids
-- :after and :until (the operation's cursor and its bound).
SELECT * FROM trellis_tasks
WHERE id > :after AND id < :until
  AND status IN (SELECT value FROM json_each(:statuses))
  AND (:type IS NULL OR type = :type) AND (:queue IS NULL OR queue = :queue)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
ORDER BY id
LIMIT :limit;

-- name: purge_events
DELETE FROM trellis_events WHERE task_id IN (
    SELECT id FROM trellis_tasks
    WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'dead'
);

-- name: purge_tasks
DELETE FROM trellis_tasks WHERE id IN (SELECT value FROM json_each(:ids)) AND status = 'dead';

-- name: schedule_name_taken
SELECT id FROM trellis_schedules WHERE name = :name AND id <> :id;

-- name: save_schedule
INSERT INTO trellis_schedules (id, name, task_type, payload, queue, priority, every, cron, timezone, at, paused, misfire, anchor, next_run_at, last_run_at, created_at, updated_at, declared)
VALUES (:id, :name, :task_type, :payload, :queue, :priority, :every, :cron, :timezone, :at, :paused, :misfire, :anchor, :next_run_at, :last_run_at, :created_at, :updated_at, :declared)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name,
    task_type = excluded.task_type,
    payload = excluded.payload,
    queue = excluded.queue,
    priority = excluded.priority,
    every = excluded.every,
    cron = excluded.cron,
    timezone = excluded.timezone,
    at = excluded.at,
    paused = excluded.paused,
    misfire = excluded.misfire,
    anchor = excluded.anchor,
    next_run_at = excluded.next_run_at,
    last_run_at = excluded.last_run_at,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at,
    declared = excluded.declared;

-- name: get_schedule
SELECT * FROM trellis_schedules WHERE id = :id;

-- name: list_schedules
-- BINARY collation: the order of Python's sorted(), code point by code point.
SELECT * FROM trellis_schedules ORDER BY name;

-- name: delete_schedule
DELETE FROM trellis_schedules WHERE id = :id;

-- name: advance_schedule
-- Only when next_run_at is still what the caller saw (IS: NULL matches NULL).
UPDATE trellis_schedules
SET next_run_at = :next_run_at, last_run_at = coalesce(:fired_at, last_run_at)
WHERE id = :id AND next_run_at IS :expected;

-- name: type_load
-- One statement, so one snapshot: a start recorded meanwhile is counted once, not missed.
-- ``oldest``: the window's earliest starts, as many as the allowance may need (up to the
-- one whose leaving frees a slot): one, unless the type is over its rate.
WITH h AS (
    SELECT count(*) AS held,
        coalesce(sum(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0) AS unstarted
    FROM trellis_tasks
    WHERE type = :type AND lease_owner IS NOT NULL AND status IN ('queued', 'running')
), r AS (
    SELECT count(*) AS recent FROM trellis_type_starts
    WHERE type = :type AND at > :since
)
SELECT h.held, h.unstarted, r.recent, (
    SELECT json_group_array(at) FROM (
        SELECT at FROM trellis_type_starts WHERE type = :type AND at > :since
        ORDER BY at LIMIT (SELECT max(1, r.recent + h.unstarted - :rate + 1) FROM h, r)
    ) AS o
) AS oldest
FROM h, r;

-- name: prune_starts
DELETE FROM trellis_type_starts WHERE type = :type AND at <= :since;

-- name: insert_start
INSERT INTO trellis_type_starts (type, at) VALUES (:type, :at);

-- name: set_paused
INSERT INTO trellis_queues (name, paused, paused_at, updated_at)
VALUES (:name, :paused, :paused_at, :now)
ON CONFLICT (name) DO UPDATE SET
    paused = excluded.paused,
    paused_at = CASE WHEN trellis_queues.paused = excluded.paused
        THEN trellis_queues.paused_at ELSE excluded.paused_at END,
    updated_at = excluded.updated_at;

-- name: queue_rows
SELECT name, paused, paused_at FROM trellis_queues;

-- Workflows ----------------------------------------------------------------------------

-- name: insert_history
INSERT INTO trellis_workflow_history (
    workflow_id, seq, kind, name, step_id, wake_at, value, error, outcome, recorded_at,
    resolved_at
) VALUES (
    :workflow_id, :seq, :kind, :name, :step_id, :wake_at, :value, :error, :outcome,
    :recorded_at, :resolved_at
);

-- name: resolve_history
UPDATE trellis_workflow_history SET outcome = :outcome, value = :value, resolved_at = :at
WHERE workflow_id = :workflow_id AND seq = :seq AND outcome IS NULL;

-- name: resolve_step
UPDATE trellis_workflow_history
SET outcome = :outcome, value = :value, error = :error, resolved_at = :at
WHERE workflow_id = :workflow_id AND step_id = :step_id AND outcome IS NULL;

-- name: history
SELECT * FROM trellis_workflow_history WHERE workflow_id = :id ORDER BY seq;

-- name: insert_signal
INSERT INTO trellis_workflow_signals (workflow_id, name, payload, sent_at)
VALUES (:workflow_id, :name, :payload, :sent_at);

-- name: consume_signal
UPDATE trellis_workflow_signals SET consumed_by = :seq
WHERE id = :id AND workflow_id = :workflow_id AND consumed_by IS NULL;

-- name: signals
SELECT * FROM trellis_workflow_signals WHERE workflow_id = :id ORDER BY id;

-- name: steps
SELECT * FROM trellis_tasks WHERE parent_id = :id ORDER BY id;

-- name: active_steps
SELECT * FROM trellis_tasks
WHERE parent_id IN (SELECT value FROM json_each(:ids))
  AND status IN ('pending', 'queued', 'running', 'retrying', 'waiting')
ORDER BY id;

-- name: delete_histories
-- Of the given workflows that no longer exist (deleted in this transaction).
DELETE FROM trellis_workflow_history
WHERE workflow_id IN (SELECT value FROM json_each(:ids))
  AND workflow_id NOT IN (SELECT id FROM trellis_tasks WHERE id IN (SELECT value FROM json_each(:ids)));

-- name: delete_signals
DELETE FROM trellis_workflow_signals
WHERE workflow_id IN (SELECT value FROM json_each(:ids))
  AND workflow_id NOT IN (SELECT id FROM trellis_tasks WHERE id IN (SELECT value FROM json_each(:ids)));
