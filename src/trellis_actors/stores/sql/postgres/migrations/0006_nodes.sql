-- 0006: the nodes registry, and where each attempt ran.
--
-- Every node writes its row at each heartbeat and deletes it when it stops; a node not
-- seen for three of its heartbeats is shown lost, and its row is deleted after sixty.
-- ``workers`` and ``busy`` are counts, ``activity`` the list of its workers (name,
-- current task, tasks done), ``queues`` the list it works (NULL: every queue).

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

-- The node (its lease owner id) and the worker of a task's latest attempt; on events, of
-- the attempt that a move to or from running starts or ends.
ALTER TABLE trellis_tasks ADD COLUMN node text;
ALTER TABLE trellis_tasks ADD COLUMN worker text;
ALTER TABLE trellis_events ADD COLUMN node text;
ALTER TABLE trellis_events ADD COLUMN worker text;
