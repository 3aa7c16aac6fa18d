-- Web UI login sessions (table trellis_sessions), loaded by _sqlsessions.py.

-- name: save_session
INSERT INTO trellis_sessions (key, token_name, scopes, created_at, seen_at, expires_at)
VALUES (%(key)s, %(token_name)s, %(scopes)s, %(created_at)s, %(seen_at)s, %(expires_at)s)
ON CONFLICT (key) DO UPDATE SET
    token_name = EXCLUDED.token_name, scopes = EXCLUDED.scopes,
    created_at = EXCLUDED.created_at, seen_at = EXCLUDED.seen_at,
    expires_at = EXCLUDED.expires_at;

-- name: get_session
SELECT * FROM trellis_sessions WHERE key = %(key)s;

-- name: touch_session
UPDATE trellis_sessions SET seen_at = %(seen_at)s WHERE key = %(key)s AND seen_at < %(seen_at)s;

-- name: session_exists
SELECT 1 FROM trellis_sessions WHERE key = %(key)s;

-- name: delete_session
DELETE FROM trellis_sessions WHERE key = %(key)s;

-- name: prune_sessions
DELETE FROM trellis_sessions WHERE seen_at < %(seen_before)s OR expires_at <= %(now)s;
