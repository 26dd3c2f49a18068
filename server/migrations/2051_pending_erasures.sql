-- Issue 20: erasures on request (`DELETE /api/v1/me`) that kept something still needed (an
-- active appointment, an order waiting for review, a valid receipt): the sweep erases it once
-- it has ended. `erased_at` (ms, the server's clock) bounds what the erasure covers.
CREATE TABLE pending_erasures (
    user_id   TEXT NOT NULL,
    erased_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, erased_at)
);
