CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('reviewer', 'staff')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
