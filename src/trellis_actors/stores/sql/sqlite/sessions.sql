-- Web UI login sessions (table trellis_sessions), loaded by _sqlsessions.py.

-- name: save_session
INSERT INTO trellis_sessions (key, token_name, scopes, created_at, seen_at, expires_at)
VALUES (:key, :token_name, :scopes, :created_at, :seen_at, :expires_at)
ON CONFLICT (key) DO UPDATE SET
    token_name = excluded.token_name, scopes = excluded.scopes,
    created_at = excluded.created_at, seen_at = excluded.seen_at,
    expires_at = excluded.expires_at;

-- name: get_session
SELECT * FROM trellis_sessions WHERE key = :key;

-- name: touch_session
UPDATE trellis_sessions SET seen_at = :seen_at WHERE key = :key AND seen_at < :seen_at;

-- name: session_exists
SELECT 1 FROM trellis_sessions WHERE key = :key;

-- name: delete_session
DELETE FROM trellis_sessions WHERE key = :key;

-- name: prune_sessions
DELETE FROM trellis_sessions WHERE seen_at < :seen_before OR expires_at <= :now;
