-- Whether an approved receipt has expired is `ReceiptOrder::status_at`, judged in Rust on
-- both backends; the column that let SQL restate it goes.
ALTER TABLE receipt_orders DROP COLUMN expires_at;
