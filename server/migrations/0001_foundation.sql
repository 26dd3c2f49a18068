CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    openid      TEXT NOT NULL UNIQUE,
    unionid     TEXT,
    session_key TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Key-value with expiry (milliseconds since the epoch); expired rows are ignored and swept.
CREATE TABLE kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX kv_expires ON kv (expires_at);
