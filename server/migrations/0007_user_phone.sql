-- The mobile number WeChat verified for the user (getPhoneNumber), offered for bookings.
ALTER TABLE users ADD COLUMN phone TEXT;
