-- Issue 15: the rules kept per ID number are kept per account and ID number (the number is
-- not verified against its holder, so anyone could otherwise read or move a stranger's state),
-- plus the account's own no-show ban and the counters of booking attempts.

-- One active appointment per account and ID number.
DROP INDEX appointments_one_active_per_person;
CREATE UNIQUE INDEX appointments_one_active_per_applicant
    ON appointments (user_id, id_hash) WHERE status = 'booked';

-- No-shows, by the account that booked them.
CREATE TABLE no_shows (
    appointment_id TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    id_hash        TEXT NOT NULL,
    at             INTEGER NOT NULL
);
CREATE INDEX no_shows_by_applicant ON no_shows (user_id, id_hash, at);
CREATE INDEX no_shows_by_account ON no_shows (user_id, at);
INSERT INTO no_shows (appointment_id, user_id, id_hash, at)
    SELECT p.appointment_id, a.user_id, p.id_hash, p.at
    FROM person_no_shows p JOIN appointments a ON a.id = p.appointment_id;

-- Bans of an account for an ID number, or (id_hash '') of the whole account. A ban kept per
-- number before goes to the accounts whose no-shows earned it.
CREATE TABLE booking_bans (
    user_id TEXT NOT NULL,
    id_hash TEXT NOT NULL,
    until   INTEGER NOT NULL,
    PRIMARY KEY (user_id, id_hash)
);
INSERT OR IGNORE INTO booking_bans (user_id, id_hash, until)
    SELECT DISTINCT n.user_id, b.id_hash, b.until
    FROM person_bans b JOIN no_shows n ON n.id_hash = b.id_hash;
DROP TABLE person_no_shows;
DROP TABLE person_bans;

-- Booking attempts per fixed window: `account:<user>` and `applicant:<user>:<id hash>`.
CREATE TABLE booking_attempts (
    key         TEXT PRIMARY KEY,
    window_ends INTEGER NOT NULL,
    n           INTEGER NOT NULL
);
