-- The notification outbox: written in the same transaction as the event that causes it,
-- sent by a worker. `due_at` (ms, the server's clock) is when it may next be claimed: its
-- not-before time, its next retry, or when a claim by a worker that died runs out.
CREATE TABLE outbox (
    id         TEXT PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    doc        TEXT NOT NULL,
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    due_at     INTEGER NOT NULL,
    owner      TEXT,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE state IN ('pending', 'sending');

-- One-time subscriptions: sends each user granted per template (one per accept).
CREATE TABLE subscription_grants (
    user_id     TEXT NOT NULL,
    template_id TEXT NOT NULL,
    remaining   INTEGER NOT NULL,
    PRIMARY KEY (user_id, template_id)
);

-- A grant held by a notification being sent: taking it again (after a crash) is a no-op, so
-- a restart does not spend a second grant on the same notification.
CREATE TABLE subscription_holds (
    notification_id TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    template_id     TEXT NOT NULL
);
