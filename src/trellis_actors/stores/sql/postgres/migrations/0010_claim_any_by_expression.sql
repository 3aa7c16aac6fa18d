-- 0010: the all-queues claim index orders by (-priority), an expression only the
-- all-queues claim asks for. On (priority DESC) it served a one-queue claim as well, and
-- with statistics that predate a backlog in other queues (a burst before autovacuum's
-- next ANALYZE) the planner walked it past every other queue's task: 8 ms a claim with
-- 20,000 queued elsewhere, where the per-queue index takes 0.1 ms.

DROP INDEX trellis_tasks_claim_any;
CREATE INDEX trellis_tasks_claim_any ON trellis_tasks ((-priority), queued_at, id)
    WHERE status = 'queued' AND lease_owner IS NULL;
