-- 0006: the nodes registry, and where each attempt ran.
--
-- Every node writes its row at each heartbeat and deletes it when it stops; a node not
-- seen for three of its heartbeats is shown lost, and its row is deleted after sixty.
-- ``workers`` and ``busy`` are counts, ``activity`` the JSON list of its workers (name,
-- current task, tasks done), ``queues`` the JSON list it works (NULL: every queue).

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

-- The node (its lease owner id) and the worker of a task's latest attempt; on events, of
-- the attempt that a move to or from running starts or ends.
ALTER TABLE trellis_tasks ADD COLUMN node TEXT;
ALTER TABLE trellis_tasks ADD COLUMN worker TEXT;
ALTER TABLE trellis_events ADD COLUMN node TEXT;
ALTER TABLE trellis_events ADD COLUMN worker TEXT;
