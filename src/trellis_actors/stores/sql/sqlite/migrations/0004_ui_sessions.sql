-- 0004: web UI login sessions, shared by every node. The key is the sha256 of the
-- session id (the cookie), never the id itself; scopes are space-separated.

CREATE TABLE trellis_sessions (
    key TEXT PRIMARY KEY,
    token_name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at REAL NOT NULL,
    seen_at REAL NOT NULL,
    expires_at REAL NOT NULL
);

CREATE INDEX trellis_sessions_seen ON trellis_sessions (seen_at);
