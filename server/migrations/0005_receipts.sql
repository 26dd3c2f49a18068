-- Photo-receipt orders. The order itself is one JSON document (`doc`, the domain type as
-- serialised); the columns beside it are what the queries filter and sort on, written from
-- the same document in the same statement.
CREATE TABLE receipt_orders (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   INTEGER NOT NULL, -- milliseconds since the epoch
    submitted_at INTEGER NOT NULL,
    receipt_no   TEXT UNIQUE,
    expires_at   INTEGER,
    version      INTEGER NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX receipt_orders_by_user ON receipt_orders (user_id, created_at DESC, id DESC);
CREATE INDEX receipt_orders_queue ON receipt_orders (status, submitted_at, id);
