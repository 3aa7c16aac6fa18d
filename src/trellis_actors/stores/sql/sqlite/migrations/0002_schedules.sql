-- 0002: schedules (interval, cron and one-shot), persisted.

CREATE TABLE trellis_schedules (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    task_type TEXT NOT NULL,
    payload TEXT,
    queue TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    every REAL,
    cron TEXT,
    timezone TEXT,
    at REAL,
    paused INTEGER NOT NULL DEFAULT 0,
    misfire TEXT NOT NULL CHECK (misfire IN ('skip', 'run_once')),
    anchor REAL NOT NULL,
    next_run_at REAL,
    last_run_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    declared INTEGER NOT NULL DEFAULT 0
);
