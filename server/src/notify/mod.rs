//! Service notifications: subscriptions, the durable outbox, and its sender.
