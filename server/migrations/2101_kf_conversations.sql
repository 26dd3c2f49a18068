-- Issue 21: 客服 conversations, and the `support` role that reads and answers them.

-- The role's CHECK gains `support`. Edited in place (SQLite's documented way to loosen a
-- CHECK constraint), so columns other migrations add to `admins` stay whatever their order.
-- The writer reconnects after migrating, so it reads the edited schema.
PRAGMA writable_schema = ON;
UPDATE sqlite_master
   SET sql = replace(sql, 'CHECK (role IN (''reviewer'', ''staff''))',
                          'CHECK (role IN (''reviewer'', ''staff'', ''support''))')
 WHERE type = 'table' AND name = 'admins';
PRAGMA writable_schema = OFF;

-- One conversation per WeChat user (its id is derived from the openid). Times are ms of the
-- server's clock. A conversation awaits a person when `needs_person_at` > `staff_at`.
CREATE TABLE kf_conversations (
    id              TEXT PRIMARY KEY,
    openid          TEXT NOT NULL,
    last_at         INTEGER NOT NULL,
    last_user_at    INTEGER NOT NULL,
    needs_person_at INTEGER NOT NULL DEFAULT 0,
    staff_at        INTEGER NOT NULL DEFAULT 0,
    last_text       TEXT NOT NULL
);
CREATE INDEX kf_conversations_last ON kf_conversations (last_at);

-- Each message of a conversation: what the user wrote and each reply, with who answered.
CREATE TABLE kf_messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES kf_conversations (id) ON DELETE CASCADE,
    at              INTEGER NOT NULL,
    author          TEXT NOT NULL CHECK (author IN ('user', 'auto', 'staff')),
    staff_id        TEXT,
    text            TEXT NOT NULL
);
CREATE INDEX kf_messages_conversation ON kf_messages (conversation_id, at);
