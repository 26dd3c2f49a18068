-- Issue 15, operations: staff work at halls, accounts can be disabled and all their tokens
-- revoked (the epoch a token must carry), and the audit log of admin requests. The role's
-- CHECK goes: `Role` parses it, and new roles need no rebuild of the table.
CREATE TABLE admins_new (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    halls         TEXT NOT NULL DEFAULT '',
    disabled      INTEGER NOT NULL DEFAULT 0,
    token_epoch   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO admins_new (id, username, role, password_hash, created_at)
    SELECT id, username, role, password_hash, created_at FROM admins;
DROP TABLE admins;
ALTER TABLE admins_new RENAME TO admins;

CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    action  TEXT NOT NULL,
    records TEXT NOT NULL,
    status  INTEGER NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
