-- Named queries of the PostgreSQL store, loaded once by trellis_actors.stores._sql.
-- Parameters use psycopg's %(name)s style; lists travel as arrays (= ANY(%(ids)s::uuid[])).
-- Rows that a call will move are locked: FOR UPDATE (ordered by id, so two writers never
-- wait on each other crosswise) or, where another node may take them instead, SKIP LOCKED.

-- name: ping
SELECT 1;

-- name: create_migrations
CREATE TABLE IF NOT EXISTS trellis_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migration_lock
-- Held to the end of the transaction: nodes starting together migrate one after another.
SELECT pg_advisory_xact_lock(1953654124, hashtext('trellis_migrate'));

-- name: applied_migrations
SELECT version FROM trellis_migrations ORDER BY version;

-- name: record_migration
INSERT INTO trellis_migrations (version, name) VALUES (%(version)s, %(name)s);

-- name: insert_task
INSERT INTO trellis_tasks (
    id, type, queue, payload, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    result, error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, parent_id
) VALUES (
    %(id)s::uuid, %(type)s, %(queue)s, %(payload)s::jsonb, %(status)s, %(priority)s,
    %(attempt)s, %(max_attempts)s, %(run_at)s, %(timeout)s, %(idempotency_key)s,
    %(dead_letter)s, %(created_at)s, %(queued_at)s, %(started_at)s, %(finished_at)s,
    %(updated_at)s, %(result)s::jsonb, %(error)s::jsonb, %(progress)s, %(progress_message)s,
    %(lease_owner)s, %(lease_expires_at)s, %(schedule_id)s, %(trace_context)s::jsonb,
    %(parent_id)s::uuid
)
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;

-- name: copy_tasks
-- New tasks without an idempotency key; the column order is TaskLogic.row()'s.
COPY trellis_tasks (
    id, type, queue, payload, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    result, error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, parent_id
) FROM STDIN;

-- name: task_by_key
SELECT * FROM trellis_tasks WHERE idempotency_key = %(key)s;

-- name: update_tasks
-- One statement for a whole batch: one array per column, one element per task.
UPDATE trellis_tasks AS t SET
    status = u.status, attempt = u.attempt, run_at = u.run_at, queued_at = u.queued_at,
    started_at = u.started_at, finished_at = u.finished_at, updated_at = u.updated_at,
    result = u.result, error = u.error, progress = u.progress,
    progress_message = u.progress_message, lease_owner = u.lease_owner,
    lease_expires_at = u.lease_expires_at, node = u.node, worker = u.worker
FROM unnest(
    %(id)s::uuid[], %(status)s::text[], %(attempt)s::integer[], %(run_at)s::float8[],
    %(queued_at)s::float8[], %(started_at)s::float8[], %(finished_at)s::float8[],
    %(updated_at)s::float8[], %(result)s::jsonb[], %(error)s::jsonb[],
    %(progress)s::float8[], %(progress_message)s::text[], %(lease_owner)s::text[],
    %(lease_expires_at)s::float8[], %(node)s::text[], %(worker)s::text[]
) AS u (
    id, status, attempt, run_at, queued_at, started_at, finished_at, updated_at, result,
    error, progress, progress_message, lease_owner, lease_expires_at, node, worker
)
WHERE t.id = u.id;

-- name: update_task
-- One or two tasks: cheaper than update_tasks, whose unnest costs more to plan and run.
UPDATE trellis_tasks SET
    status = %(status)s, attempt = %(attempt)s, run_at = %(run_at)s, queued_at = %(queued_at)s,
    started_at = %(started_at)s, finished_at = %(finished_at)s, updated_at = %(updated_at)s,
    result = %(result)s::jsonb, error = %(error)s::jsonb, progress = %(progress)s,
    progress_message = %(progress_message)s, lease_owner = %(lease_owner)s,
    lease_expires_at = %(lease_expires_at)s, node = %(node)s, worker = %(worker)s
WHERE id = %(id)s::uuid;

-- name: copy_events
COPY trellis_events (
    task_id, from_status, to_status, at, attempt, detail, node, worker
) FROM STDIN;

-- name: enqueue_task
-- One new task without an idempotency key, with its events and the wake-up (when %(wake)s),
-- in one statement: one round trip in the caller's transaction, and atomic on its own in
-- autocommit. {events} stands for one "(%(eN_task_id)s::uuid, …)" group per event, N from
-- 0 (trellis_actors.postgres builds it, from the number of events only).
WITH task AS (
    INSERT INTO trellis_tasks (
        id, type, queue, payload, status, priority, attempt, max_attempts, run_at, timeout,
        idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at,
        updated_at, result, error, progress, progress_message, lease_owner, lease_expires_at,
        schedule_id, trace_context
    ) VALUES (
        %(id)s::uuid, %(type)s, %(queue)s, %(payload)s::jsonb, %(status)s, %(priority)s,
        %(attempt)s, %(max_attempts)s, %(run_at)s, %(timeout)s, %(idempotency_key)s,
        %(dead_letter)s, %(created_at)s, %(queued_at)s, %(started_at)s, %(finished_at)s,
        %(updated_at)s, %(result)s::jsonb, %(error)s::jsonb, %(progress)s,
        %(progress_message)s, %(lease_owner)s, %(lease_expires_at)s, %(schedule_id)s,
        %(trace_context)s::jsonb
    )
), events AS (
    INSERT INTO trellis_events (task_id, from_status, to_status, at, attempt, detail)
    VALUES {events}
)
SELECT pg_notify('trellis_work', %(origin)s) WHERE %(wake)s;

-- name: insert_event
-- A few events: one pipelined round trip (executemany), where COPY takes two.
INSERT INTO trellis_events (task_id, from_status, to_status, at, attempt, detail, node, worker)
VALUES (
    %(task_id)s::uuid, %(from_status)s, %(to_status)s, %(at)s, %(attempt)s, %(detail)s,
    %(node)s, %(worker)s
);

-- name: notify
-- Delivered at commit, and only once per transaction however often it is sent.
SELECT pg_notify('trellis_work', %(origin)s);

-- name: listen
LISTEN trellis_work;

-- name: try_lead
SELECT pg_try_advisory_lock(1953654124, hashtext(%(name)s)) AS ok;

-- name: resign
SELECT pg_advisory_unlock(1953654124, hashtext(%(name)s)) AS ok;

-- name: resign_all
SELECT pg_advisory_unlock_all();

-- name: get_task
SELECT * FROM trellis_tasks WHERE id = %(id)s::uuid;

-- name: lock_task
SELECT * FROM trellis_tasks WHERE id = %(id)s::uuid FOR UPDATE;

-- name: lease_states
-- What decides whether a start or an outcome still applies (finish), a held row's lease,
-- and what may change while a task runs (its progress, and the lease's expiry).
SELECT id, status, lease_owner, attempt, progress, progress_message, updated_at,
    lease_expires_at
FROM trellis_tasks
WHERE id = ANY(%(ids)s::uuid[]) AND status IN ('queued', 'running')
    AND lease_owner IS NOT NULL
ORDER BY id FOR UPDATE;

-- name: lock_tasks
SELECT * FROM trellis_tasks WHERE id = ANY(%(ids)s::uuid[]) ORDER BY id FOR UPDATE;

-- name: due_tasks
SELECT * FROM trellis_tasks
WHERE status IN ('pending', 'retrying', 'waiting') AND run_at <= %(now)s
ORDER BY run_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: next_due_at
-- A workflow waiting with no timer has run_at 9999-12-31T23:59:59Z (decisions.NEVER).
SELECT min(run_at) AS run_at FROM trellis_tasks
WHERE status IN ('pending', 'retrying', 'waiting') AND run_at < 253402300799.0;

-- name: claim_plan
-- Before a claim, in its transaction: take the best queued tasks by walking the claim
-- index in order, never by sorting every queued row. Without statistics (a fresh table,
-- until autovacuum's first ANALYZE) the planner guesses a few dozen queued rows and sorts
-- them all: 11 ms a claim with 20,000 queued, seconds with a million.
SET LOCAL enable_sort = off;

-- name: claim_queue
SELECT * FROM trellis_tasks
WHERE status = 'queued' AND lease_owner IS NULL AND queue = %(queue)s
  AND type <> ALL(%(exclude)s::text[])
  AND NOT EXISTS (SELECT 1 FROM trellis_queues AS q WHERE q.name = trellis_tasks.queue AND q.paused)
ORDER BY priority DESC, queued_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: claim_any
-- (-priority): the order of the all-queues index, which no one-queue claim asks for.
SELECT * FROM trellis_tasks
WHERE status = 'queued' AND lease_owner IS NULL AND type <> ALL(%(exclude)s::text[])
  AND NOT EXISTS (SELECT 1 FROM trellis_queues AS q WHERE q.name = trellis_tasks.queue AND q.paused)
ORDER BY -priority, queued_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: heartbeat
UPDATE trellis_tasks SET lease_expires_at = %(lease_until)s
WHERE id = ANY(%(ids)s::uuid[]) AND status IN ('queued', 'running')
  AND lease_owner = %(owner)s
RETURNING id;

-- name: expired_leases
SELECT * FROM trellis_tasks
WHERE lease_expires_at <= %(now)s AND status IN ('queued', 'running')
ORDER BY id
FOR UPDATE SKIP LOCKED;

-- name: set_progress
UPDATE trellis_tasks
SET progress = %(fraction)s, progress_message = %(message)s, updated_at = %(now)s
WHERE id = %(id)s::uuid AND status = 'running';

-- name: list_any
-- Listings read summaries: every column but payload and result (which may be a MiB
-- each), and, when a listing includes them, their size, to stop a page in time.
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN %(payload)s::boolean THEN coalesce(octet_length(payload::text), 0) ELSE 0 END
    + CASE WHEN %(result)s::boolean THEN coalesce(octet_length(result::text), 0) ELSE 0 END
    AS data_size
FROM trellis_tasks
WHERE id < %(before)s::uuid
  AND id >= %(id_low)s::uuid AND id <= %(id_high)s::uuid
  AND (%(schedule_id)s::text IS NULL OR schedule_id = %(schedule_id)s)
  AND (%(created_after)s::double precision IS NULL
       OR created_at >= %(created_after)s::double precision)
  AND (%(created_before)s::double precision IS NULL
       OR created_at < %(created_before)s::double precision)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: list_by_status
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN %(payload)s::boolean THEN coalesce(octet_length(payload::text), 0) ELSE 0 END
    + CASE WHEN %(result)s::boolean THEN coalesce(octet_length(result::text), 0) ELSE 0 END
    AS data_size
FROM trellis_tasks
WHERE status = %(status)s AND id < %(before)s::uuid
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND id >= %(id_low)s::uuid AND id <= %(id_high)s::uuid
  AND (%(schedule_id)s::text IS NULL OR schedule_id = %(schedule_id)s)
  AND (%(created_after)s::double precision IS NULL
       OR created_at >= %(created_after)s::double precision)
  AND (%(created_before)s::double precision IS NULL
       OR created_at < %(created_before)s::double precision)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: list_by_queue
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN %(payload)s::boolean THEN coalesce(octet_length(payload::text), 0) ELSE 0 END
    + CASE WHEN %(result)s::boolean THEN coalesce(octet_length(result::text), 0) ELSE 0 END
    AS data_size
FROM trellis_tasks
WHERE queue = %(queue)s AND id < %(before)s::uuid
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND id >= %(id_low)s::uuid AND id <= %(id_high)s::uuid
  AND (%(schedule_id)s::text IS NULL OR schedule_id = %(schedule_id)s)
  AND (%(created_after)s::double precision IS NULL
       OR created_at >= %(created_after)s::double precision)
  AND (%(created_before)s::double precision IS NULL
       OR created_at < %(created_before)s::double precision)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: list_by_type
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN %(payload)s::boolean THEN coalesce(octet_length(payload::text), 0) ELSE 0 END
    + CASE WHEN %(result)s::boolean THEN coalesce(octet_length(result::text), 0) ELSE 0 END
    AS data_size
FROM trellis_tasks
WHERE type = %(type)s AND id < %(before)s::uuid
  AND id >= %(id_low)s::uuid AND id <= %(id_high)s::uuid
  AND (%(schedule_id)s::text IS NULL OR schedule_id = %(schedule_id)s)
  AND (%(created_after)s::double precision IS NULL
       OR created_at >= %(created_after)s::double precision)
  AND (%(created_before)s::double precision IS NULL
       OR created_at < %(created_before)s::double precision)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: list_by_key
-- At most one task has a key (a unique index): the other filters still apply.
SELECT id, type, queue, status, priority, attempt, max_attempts, run_at, timeout,
    idempotency_key, dead_letter, created_at, queued_at, started_at, finished_at, updated_at,
    error, progress, progress_message, lease_owner, lease_expires_at, schedule_id,
    trace_context, node, worker, parent_id, NULL AS payload, NULL AS result,
    CASE WHEN %(payload)s::boolean THEN coalesce(octet_length(payload::text), 0) ELSE 0 END
    + CASE WHEN %(result)s::boolean THEN coalesce(octet_length(result::text), 0) ELSE 0 END
    AS data_size
FROM trellis_tasks
WHERE idempotency_key = %(idempotency_key)s AND id < %(before)s::uuid
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND id >= %(id_low)s::uuid AND id <= %(id_high)s::uuid
  AND (%(schedule_id)s::text IS NULL OR schedule_id = %(schedule_id)s)
  AND (%(created_after)s::double precision IS NULL
       OR created_at >= %(created_after)s::double precision)
  AND (%(created_before)s::double precision IS NULL
       OR created_at < %(created_before)s::double precision)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: finished_since
-- Ended tasks of one status (completed or dead) for the UI's charts, the latest first,
-- read in order from the partial index that retention uses (its predicate restated).
SELECT type, status, finished_at, started_at FROM trellis_tasks
WHERE status = %(status)s AND status IN ('completed', 'failed', 'dead', 'cancelled')
  AND finished_at >= %(since)s
ORDER BY finished_at DESC
LIMIT %(limit)s;

-- name: task_data
-- The payloads and results a listing includes, of the tasks that fit in its page.
SELECT id, CASE WHEN %(payload)s::boolean THEN payload END AS payload,
    CASE WHEN %(result)s::boolean THEN result END AS result
FROM trellis_tasks WHERE id = ANY(%(ids)s::uuid[]);

-- name: events
SELECT * FROM trellis_events WHERE task_id = %(id)s::uuid ORDER BY id;

-- The event feed. Ids are taken as events are written but committed in whatever order
-- the transactions end, so a reader at id 100 may see 102 before 101 commits. Each event
-- row keeps the transaction that wrote it (tx); a reader takes only events of
-- transactions older than every one still in flight (pg_snapshot_xmin), in (tx, id)
-- order: nothing can later commit before what it has read.

-- name: event_mark
-- Where a reader stands: the transaction of the event it read last.
SELECT tx FROM trellis_events WHERE id = %(after)s;

-- name: events_after
-- The events after the reader's mark (tx, id), of ended transactions only.
SELECT e.id AS event_id, e.task_id, e.from_status, e.to_status, e.at,
    e.attempt AS event_attempt, e.detail, e.node AS event_node, e.worker AS event_worker, t.*
FROM trellis_events e JOIN trellis_tasks t ON t.id = e.task_id
WHERE (e.tx, e.id) > (%(tx)s::xid8, %(after)s)
    AND e.tx < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.tx, e.id LIMIT %(limit)s;

-- name: events_after_id
-- As events_after, for a reader whose last event was pruned since: on from its id.
SELECT e.id AS event_id, e.task_id, e.from_status, e.to_status, e.at,
    e.attempt AS event_attempt, e.detail, e.node AS event_node, e.worker AS event_worker, t.*
FROM trellis_events e JOIN trellis_tasks t ON t.id = e.task_id
WHERE e.id > %(after)s AND e.tx < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.tx, e.id LIMIT %(limit)s;

-- name: last_event_id
-- The last event a reader may take now, in (tx, id) order; 0 when there is none.
SELECT coalesce((
    SELECT id FROM trellis_events WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY tx DESC, id DESC LIMIT 1
), 0) AS last;

-- name: counts
SELECT queue, status, count(*) AS n FROM trellis_tasks GROUP BY queue, status;

-- name: prunable
-- Up to %(limit)s tasks of one ended status that finished before %(before)s (retention),
-- oldest first; rows another transaction holds wait for the next round.
SELECT id FROM trellis_tasks
WHERE status IN ('completed', 'failed', 'dead', 'cancelled') AND status = %(status)s
  AND finished_at < %(before)s
ORDER BY finished_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: delete
WITH doomed AS (
    DELETE FROM trellis_tasks WHERE id = ANY(%(ids)s::uuid[])
    RETURNING id
), events AS (
    DELETE FROM trellis_events USING doomed WHERE trellis_events.task_id = doomed.id
)
SELECT count(*) AS n FROM doomed;

-- name: bulk_select
-- One chunk of a bulk operation: the tasks its filter takes in, by id, between the ids
-- %(after)s and %(until)s (the operation's cursor and its bound). Rows a worker is
-- writing are waited for, not skipped: the cursor moves past them for good.
SELECT * FROM trellis_tasks
WHERE id > %(after)s::uuid AND id < %(until)s::uuid
  AND status = ANY(%(statuses)s::text[])
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(created_after)s::float8 IS NULL OR created_at >= %(created_after)s)
  AND (%(created_before)s::float8 IS NULL OR created_at < %(created_before)s)
ORDER BY id
LIMIT %(limit)s
FOR UPDATE;

-- name: purge
WITH doomed AS (
    DELETE FROM trellis_tasks WHERE id = ANY(%(ids)s::uuid[]) AND status = 'dead'
    RETURNING id
), events AS (
    DELETE FROM trellis_events USING doomed WHERE trellis_events.task_id = doomed.id
)
SELECT count(*) AS n FROM doomed;

-- name: schedule_name_taken
SELECT id FROM trellis_schedules WHERE name = %(name)s AND id <> %(id)s;

-- name: save_schedule
INSERT INTO trellis_schedules (id, name, task_type, payload, queue, priority, every, cron, timezone, at, paused, misfire, anchor, next_run_at, last_run_at, created_at, updated_at, declared)
VALUES (%(id)s, %(name)s, %(task_type)s, %(payload)s::jsonb, %(queue)s, %(priority)s, %(every)s, %(cron)s, %(timezone)s, %(at)s, %(paused)s, %(misfire)s, %(anchor)s, %(next_run_at)s, %(last_run_at)s, %(created_at)s, %(updated_at)s, %(declared)s)
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
SELECT * FROM trellis_schedules WHERE id = %(id)s;

-- name: list_schedules
-- The "C" collation: the order of Python's sorted(), code point by code point.
SELECT * FROM trellis_schedules ORDER BY name COLLATE "C";

-- name: delete_schedule
DELETE FROM trellis_schedules WHERE id = %(id)s;

-- name: advance_schedule
-- Only when next_run_at is still what the caller saw (NULL matches NULL).
UPDATE trellis_schedules
SET next_run_at = %(next_run_at)s, last_run_at = coalesce(%(fired_at)s::float8, last_run_at)
WHERE id = %(id)s AND next_run_at IS NOT DISTINCT FROM %(expected)s::float8;

-- name: lock_type
-- Claims of a limited type serialize across nodes, to the end of the transaction.
SELECT pg_advisory_xact_lock(1953654124, hashtext('trellis:type:' || %(type)s));

-- name: type_load
-- One statement, so one snapshot: a start recorded meanwhile is counted once, not missed.
-- ``oldest``: the window's earliest starts, as many as the allowance may need (up to the
-- one whose leaving frees a slot): one, unless the type is over its rate.
WITH h AS (
    SELECT count(*) AS held,
        coalesce(sum(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0) AS unstarted
    FROM trellis_tasks
    WHERE type = %(type)s AND lease_owner IS NOT NULL AND status IN ('queued', 'running')
), r AS (
    SELECT count(*) AS recent FROM trellis_type_starts
    WHERE type = %(type)s AND at > %(since)s
)
SELECT h.held, h.unstarted, r.recent, (
    SELECT coalesce(array_agg(at ORDER BY at), '{}') FROM (
        SELECT at FROM trellis_type_starts WHERE type = %(type)s AND at > %(since)s
        ORDER BY at LIMIT greatest(1, r.recent + h.unstarted - %(rate)s + 1)
    ) AS o
) AS oldest
FROM h, r;

-- name: prune_starts
DELETE FROM trellis_type_starts WHERE type = %(type)s AND at <= %(since)s;

-- name: insert_start
INSERT INTO trellis_type_starts (type, at) VALUES (%(type)s, %(at)s);

-- name: set_paused
INSERT INTO trellis_queues (name, paused, paused_at, updated_at)
VALUES (%(name)s, %(paused)s, %(paused_at)s, %(now)s)
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
    %(workflow_id)s::uuid, %(seq)s, %(kind)s, %(name)s, %(step_id)s::uuid, %(wake_at)s,
    %(value)s::jsonb, %(error)s::jsonb, %(outcome)s, %(recorded_at)s, %(resolved_at)s
);

-- name: resolve_history
UPDATE trellis_workflow_history
SET outcome = %(outcome)s, value = %(value)s::jsonb, resolved_at = %(at)s
WHERE workflow_id = %(workflow_id)s::uuid AND seq = %(seq)s AND outcome IS NULL;

-- name: resolve_step
UPDATE trellis_workflow_history
SET outcome = %(outcome)s, value = %(value)s::jsonb, error = %(error)s::jsonb,
    resolved_at = %(at)s
WHERE workflow_id = %(workflow_id)s::uuid AND step_id = %(step_id)s::uuid
  AND outcome IS NULL;

-- name: history
SELECT * FROM trellis_workflow_history WHERE workflow_id = %(id)s::uuid ORDER BY seq;

-- name: insert_signal
INSERT INTO trellis_workflow_signals (workflow_id, name, payload, sent_at)
VALUES (%(workflow_id)s::uuid, %(name)s, %(payload)s::jsonb, %(sent_at)s);

-- name: consume_signal
UPDATE trellis_workflow_signals SET consumed_by = %(seq)s
WHERE id = %(id)s AND workflow_id = %(workflow_id)s::uuid AND consumed_by IS NULL;

-- name: signals
SELECT * FROM trellis_workflow_signals WHERE workflow_id = %(id)s::uuid ORDER BY id;

-- name: steps
SELECT * FROM trellis_tasks WHERE parent_id = %(id)s::uuid ORDER BY id;

-- name: active_steps
SELECT * FROM trellis_tasks
WHERE parent_id = ANY(%(ids)s::uuid[])
  AND status IN ('pending', 'queued', 'running', 'retrying', 'waiting')
ORDER BY id
FOR UPDATE;

-- name: delete_histories
-- Of the given workflows that no longer exist (deleted in this transaction).
DELETE FROM trellis_workflow_history h
WHERE h.workflow_id = ANY(%(ids)s::uuid[])
  AND NOT EXISTS (SELECT 1 FROM trellis_tasks t WHERE t.id = h.workflow_id);

-- name: delete_signals
DELETE FROM trellis_workflow_signals s
WHERE s.workflow_id = ANY(%(ids)s::uuid[])
  AND NOT EXISTS (SELECT 1 FROM trellis_tasks t WHERE t.id = s.workflow_id);
