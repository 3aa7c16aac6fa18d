-- 0009: durable workflows. Tasks may be "waiting" (a workflow between continuations)
-- and name the workflow they are a step of (parent_id); workflows' timers share the due
-- index; each workflow's history and the signals sent to it get tables of their own.

ALTER TABLE trellis_tasks DROP CONSTRAINT trellis_tasks_status_check;
ALTER TABLE trellis_tasks ADD CONSTRAINT trellis_tasks_status_check CHECK (status IN (
    'pending', 'queued', 'running', 'completed', 'retrying', 'failed', 'dead', 'cancelled',
    'waiting'
));
ALTER TABLE trellis_tasks ADD COLUMN parent_id uuid;

DROP INDEX trellis_tasks_due;
CREATE INDEX trellis_tasks_due ON trellis_tasks (run_at, id)
    WHERE status IN ('pending', 'retrying', 'waiting');

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
