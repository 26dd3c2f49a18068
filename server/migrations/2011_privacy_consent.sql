-- Consent to the privacy notice (issue 20): which version of the notice the user accepted,
-- and when. A new version leaves these as they were; the user is asked again because the
-- stored version no longer matches the current one.
ALTER TABLE users ADD COLUMN privacy_version TEXT;
ALTER TABLE users ADD COLUMN privacy_accepted_at TEXT;
