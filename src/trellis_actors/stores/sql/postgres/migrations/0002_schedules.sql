-- 0002: schedules (interval, cron and one-shot), persisted.

CREATE TABLE trellis_schedules (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    task_type text NOT NULL,
    payload jsonb,
    queue text,
    priority integer NOT NULL DEFAULT 0,
    every double precision,
    cron text,
    timezone text,
    at double precision,
    paused boolean NOT NULL DEFAULT false,
    misfire text NOT NULL CHECK (misfire IN ('skip', 'run_once')),
    anchor double precision NOT NULL,
    next_run_at double precision,
    last_run_at double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    declared boolean NOT NULL DEFAULT false
);
