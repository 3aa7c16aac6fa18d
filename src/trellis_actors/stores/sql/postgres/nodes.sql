-- Nodes (table trellis_nodes), loaded by _sqlnodes.py.

-- name: save_node
INSERT INTO trellis_nodes (
    id, host, pid, version, started_at, seen_at, heartbeat, workers, busy, processes,
    queues, draining, activity
) VALUES (
    %(id)s, %(host)s, %(pid)s, %(version)s, %(started_at)s, %(seen_at)s, %(heartbeat)s,
    %(workers)s, %(busy)s, %(processes)s, %(queues)s::jsonb, %(draining)s,
    %(activity)s::jsonb
)
ON CONFLICT (id) DO UPDATE SET
    host = excluded.host, pid = excluded.pid, version = excluded.version,
    started_at = excluded.started_at, seen_at = excluded.seen_at,
    heartbeat = excluded.heartbeat, workers = excluded.workers, busy = excluded.busy,
    processes = excluded.processes, queues = excluded.queues,
    draining = excluded.draining, activity = excluded.activity;

-- name: list_nodes
SELECT * FROM trellis_nodes ORDER BY id;

-- name: delete_node
DELETE FROM trellis_nodes WHERE id = %(id)s;

-- name: prune_nodes
-- Rows not seen for FORGET_AFTER of their own heartbeats.
DELETE FROM trellis_nodes WHERE seen_at + heartbeat * %(forget_after)s < %(now)s;
