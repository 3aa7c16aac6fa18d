-- 0005: retention prunes failed and cancelled tasks too, not only completed and dead ones:
-- the index it walks covers every ended status.

DROP INDEX trellis_tasks_finished;
CREATE INDEX trellis_tasks_finished ON trellis_tasks (status, finished_at)
    WHERE status IN ('completed', 'failed', 'dead', 'cancelled');
