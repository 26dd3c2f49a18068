-- Appointments: the JSON document (the same on both backends) plus the columns the rules query.
-- Times are milliseconds since the epoch.
CREATE TABLE appointments (
    id         TEXT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    slot_id    TEXT NOT NULL,
    id_hash    TEXT NOT NULL,
    status     TEXT NOT NULL,
    no_show_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    doc        TEXT NOT NULL
);
-- One active appointment per person, enforced by the database as well as by the code.
CREATE UNIQUE INDEX appointments_one_active_per_person ON appointments (id_hash) WHERE status = 'booked';
CREATE INDEX appointments_by_user ON appointments (user_id, status, created_at);
CREATE INDEX appointments_due ON appointments (no_show_at) WHERE status = 'booked';

-- Seats taken per slot (hall, local day 20261127, start 0930); slots themselves are generated.
CREATE TABLE slot_seats (
    hall_id TEXT NOT NULL,
    day     TEXT NOT NULL,
    time    TEXT NOT NULL,
    taken   INTEGER NOT NULL CHECK (taken >= 0),
    PRIMARY KEY (hall_id, day, time)
);

CREATE TABLE person_no_shows (
    appointment_id TEXT PRIMARY KEY,
    id_hash        TEXT NOT NULL,
    at             INTEGER NOT NULL
);
CREATE INDEX person_no_shows_by_person ON person_no_shows (id_hash, at);

CREATE TABLE person_bans (
    id_hash TEXT PRIMARY KEY,
    until   INTEGER NOT NULL
);

-- The answer given to (user, Idempotency-Key): `OK:<appointment id>` or a refusal code.
CREATE TABLE booking_idempotency (
    user_id    TEXT NOT NULL,
    key        TEXT NOT NULL,
    body_hash  TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX booking_idempotency_expiry ON booking_idempotency (expires_at);
