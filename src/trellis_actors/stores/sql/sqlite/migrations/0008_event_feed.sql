-- 0008: the event feed. Readers resume after an event id, so ids are never taken again
-- (AUTOINCREMENT; a plain rowid reuses the ids of the newest rows once they are deleted).
-- SQLite cannot change a key in place: the table is made anew and its rows copied.

ALTER TABLE trellis_events RENAME TO trellis_events_old;

CREATE TABLE trellis_events (
    -- AUTOINCREMENT: an id is never taken again, even once the newest events are
    -- deleted, so a reader resuming after an id misses nothing written later.
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    at REAL NOT NULL,
    attempt INTEGER NOT NULL,
    detail TEXT,
    node TEXT,  -- on moves to and from running: where that attempt ran
    worker TEXT
);

INSERT INTO trellis_events (id, task_id, from_status, to_status, at, attempt, detail, node, worker)
SELECT id, task_id, from_status, to_status, at, attempt, detail, node, worker
FROM trellis_events_old;

DROP TABLE trellis_events_old;

CREATE INDEX trellis_events_task ON trellis_events (task_id, id);
