-- WeChat's session_key decrypts the user's data and the server never uses it: it is no longer
-- kept, and the ones kept so far are dropped (issue 15; versions 15xx are its own).
ALTER TABLE users DROP COLUMN session_key;
