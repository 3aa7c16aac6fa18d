-- 0003: a claimed task stays queued under a lease until its handler starts. Claims take
-- only queued tasks nobody holds; recovery looks at the leases of claimed tasks too.

DROP INDEX trellis_tasks_claim;
DROP INDEX trellis_tasks_claim_any;
DROP INDEX trellis_tasks_lease;
CREATE INDEX trellis_tasks_claim ON trellis_tasks (queue, priority DESC, queued_at, id)
    WHERE status = 'queued' AND lease_owner IS NULL;
CREATE INDEX trellis_tasks_claim_any ON trellis_tasks (priority DESC, queued_at, id)
    WHERE status = 'queued' AND lease_owner IS NULL;
CREATE INDEX trellis_tasks_lease ON trellis_tasks (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
