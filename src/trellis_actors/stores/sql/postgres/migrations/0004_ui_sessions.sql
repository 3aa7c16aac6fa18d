-- 0004: web UI login sessions, shared by every node. The key is the sha256 of the
-- session id (the cookie), never the id itself; scopes are space-separated.

CREATE TABLE trellis_sessions (
    key text PRIMARY KEY,
    token_name text NOT NULL,
    scopes text NOT NULL,
    created_at double precision NOT NULL,
    seen_at double precision NOT NULL,
    expires_at double precision NOT NULL
);

CREATE INDEX trellis_sessions_seen ON trellis_sessions (seen_at);
